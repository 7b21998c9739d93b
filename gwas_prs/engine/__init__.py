"""Hail start-up, the engine switch (numpy kernels or Hail), Hail error mapping, table round trips, local threads."""
