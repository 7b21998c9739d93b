#!/usr/bin/env bash
# Dataproc initialization action: install the gwas-prs wheel on every node.
#
# 'gwas-prs dataproc start' uploads the wheel to gs://BUCKET/gwas-prs/wheels/ and
# records its URI in the instance metadata 'gwas-prs-wheel' (plus the optional
# space-separated 'gwas-prs-pip-packages'). This script runs on the master AND on
# every worker (hailctl's --packages reaches the master only):
#
# - master: 'pip install WHEEL' with its dependencies (Hail itself is already
#   installed by hailctl's init action, at the pinned version, so pip keeps it);
# - workers: 'pip install --no-deps WHEEL' plus the extra packages, so pip never
#   pulls a second Spark (pyspark) from PyPI onto a Dataproc worker.
#
# On nodes with an NVIDIA GPU it checks that XGBoost was built with CUDA.
set -euo pipefail

# Overridable for tests; the defaults are Dataproc's.
readonly PYTHON="${GWAS_PRS_INIT_PYTHON:-/opt/conda/default/bin/python}"
readonly GET_METADATA="${GWAS_PRS_INIT_GET_METADATA:-/usr/share/google/get_metadata_value}"
readonly WORK_DIR="${GWAS_PRS_INIT_WORK_DIR:-/tmp/gwas-prs-install}"

metadata() {
  "${GET_METADATA}" "attributes/$1" 2>/dev/null || true
}

log() {
  echo "install-gwas-prs: $*" >&2
}

main() {
  local wheel_uri role packages wheel
  wheel_uri="$(metadata gwas-prs-wheel)"
  role="$(metadata dataproc-role)"
  packages="$(metadata gwas-prs-pip-packages)"
  if [[ -z "${wheel_uri}" ]]; then
    log "instance metadata 'gwas-prs-wheel' is empty; start the cluster with 'gwas-prs dataproc start'"
    exit 1
  fi

  mkdir -p "${WORK_DIR}"
  wheel="${WORK_DIR}/$(basename "${wheel_uri}")"
  log "copying ${wheel_uri} (role ${role:-unknown})"
  gcloud storage cp "${wheel_uri}" "${wheel}"

  if [[ "${role}" == "Master" ]]; then
    "${PYTHON}" -m pip install --no-cache-dir "${wheel}"
  else
    "${PYTHON}" -m pip install --no-cache-dir --no-deps "${wheel}"
  fi

  if [[ -n "${packages}" ]]; then
    local -a package_list
    read -r -a package_list <<< "${packages}"
    "${PYTHON}" -m pip install --no-cache-dir "${package_list[@]}"
  fi

  if command -v nvidia-smi > /dev/null 2>&1; then
    "${PYTHON}" -c 'import sys, xgboost; sys.exit(0 if xgboost.build_info().get("USE_CUDA") else "xgboost was built without CUDA")'
    log "XGBoost with CUDA support is installed"
  fi
  log "installed $(basename "${wheel}")"
}

main "$@"
