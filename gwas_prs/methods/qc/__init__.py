"""Sample QC (call rate, heterozygosity, sex, KING), variant QC, allele frequencies."""
