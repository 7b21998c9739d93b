#!/usr/bin/env bash
# Dataproc initialization action: install gwas-prs on every node.
#
# 'gwas-prs dataproc start' stages, under content-addressed names that never change
# (gs://BUCKET/gwas-prs/staged/<sha256>/NAME), the wheel and a requirements file
# that pins gwas-prs's runtime dependencies to the versions installed where 'start'
# ran (without Hail and pyspark, which hailctl and the Dataproc image provide). Their
# URIs are in the instance metadata 'gwas-prs-wheel' and 'gwas-prs-requirements'
# (plus the optional space-separated 'gwas-prs-pip-packages'). On the master AND on
# every worker (hailctl's --packages reaches the master only) this script runs
#
#   python -m pip install --no-deps WHEEL
#   python -m pip install -r REQUIREMENTS
#
# so every node, including one added later by autoscaling, gets the same versions.
#
# It also
# - removes Spark's executor/task GPU settings (and YARN's GPU isolation) that
#   Google's GPU driver init action may write for RAPIDS: Hail's executors run on
#   CPUs, and a GPU request per executor hangs jobs on clusters whose workers have
#   no GPU (XGBoost trains in the driver, on the master);
# - stops the token-less Jupyter that hailctl's own init action starts on the
#   master, unless the cluster was started with --notebook (metadata
#   'gwas-prs-notebook=true');
# - on nodes with an NVIDIA GPU, checks that XGBoost was built with CUDA.
set -euo pipefail

# Overridable for tests; the defaults are Dataproc's.
readonly PYTHON="${GWAS_PRS_INIT_PYTHON:-/opt/conda/default/bin/python}"
readonly GET_METADATA="${GWAS_PRS_INIT_GET_METADATA:-/usr/share/google/get_metadata_value}"
readonly WORK_DIR="${GWAS_PRS_INIT_WORK_DIR:-/tmp/gwas-prs-install}"
readonly SPARK_CONF_DIR="${GWAS_PRS_INIT_SPARK_CONF_DIR:-/etc/spark/conf}"
readonly HADOOP_CONF_DIR="${GWAS_PRS_INIT_HADOOP_CONF_DIR:-/etc/hadoop/conf}"
readonly SYSTEMCTL="${GWAS_PRS_INIT_SYSTEMCTL:-systemctl}"
# Edits the Hadoop XML files (any Python 3 will do).
readonly CONFIG_PYTHON="${GWAS_PRS_INIT_CONFIG_PYTHON:-${PYTHON}}"

metadata() {
  "${GET_METADATA}" "attributes/$1" 2>/dev/null || true
}

log() {
  echo "install-gwas-prs: $*" >&2
}

copy_in() {
  local uri="$1" local_path
  local_path="${WORK_DIR}/$(basename "${uri}")"
  gcloud storage cp "${uri}" "${local_path}" >&2
  echo "${local_path}"
}

# Spark: no GPU per executor or task (the driver keeps its GPU).
drop_executor_gpus() {
  local conf="${SPARK_CONF_DIR}/spark-defaults.conf"
  local pattern='^[[:space:]]*(spark\.(executor|task)\.resource\.gpu\.|spark\.plugins[[:space:]]*=[[:space:]]*com\.nvidia\.spark\.SQLPlugin)'
  if [[ -f "${conf}" ]] && grep -Eq "${pattern}" "${conf}"; then
    sed -i -E "/${pattern}/d" "${conf}"
    log "removed the executor/task GPU settings from ${conf}"
  fi
}

# YARN: no GPU resource type or GPU plugin, then restart this node's YARN daemon.
drop_yarn_gpu_isolation() {
  local role="$1" file changed=0
  for file in "${HADOOP_CONF_DIR}/yarn-site.xml" "${HADOOP_CONF_DIR}/resource-types.xml"; do
    if [[ -f "${file}" ]] && grep -q 'yarn\.io/gpu' "${file}"; then
      "${CONFIG_PYTHON}" - "${file}" <<'PY'
import sys
import xml.etree.ElementTree as ET

path = sys.argv[1]
tree = ET.parse(path)
root = tree.getroot()
for prop in list(root.findall("property")):
    name = (prop.findtext("name") or "").strip()
    value = (prop.findtext("value") or "").strip()
    if "yarn.io/gpu" in value or name.startswith("yarn.nodemanager.resource-plugins"):
        root.remove(prop)
tree.write(path, encoding="utf-8", xml_declaration=True)
PY
      log "removed YARN's GPU isolation from ${file}"
      changed=1
    fi
  done
  if [[ "${changed}" == 1 ]]; then
    local daemon=hadoop-yarn-nodemanager.service
    [[ "${role}" == "Master" ]] && daemon=hadoop-yarn-resourcemanager.service
    "${SYSTEMCTL}" try-restart "${daemon}" || log "could not restart ${daemon}"
  fi
}

stop_jupyter() {
  if [[ "$(metadata gwas-prs-notebook)" == "true" ]]; then
    log "keeping Jupyter (started with --notebook)"
  elif "${SYSTEMCTL}" cat jupyter.service > /dev/null 2>&1; then
    "${SYSTEMCTL}" disable --now jupyter.service
    log "stopped the token-less Jupyter on the master (start with --notebook to keep it)"
  fi
}

main() {
  local wheel_uri requirements_uri role packages wheel requirements
  wheel_uri="$(metadata gwas-prs-wheel)"
  requirements_uri="$(metadata gwas-prs-requirements)"
  role="$(metadata dataproc-role)"
  packages="$(metadata gwas-prs-pip-packages)"
  if [[ -z "${wheel_uri}" || -z "${requirements_uri}" ]]; then
    log "instance metadata 'gwas-prs-wheel' or 'gwas-prs-requirements' is empty; start the cluster with 'gwas-prs dataproc start'"
    exit 1
  fi

  mkdir -p "${WORK_DIR}"
  log "installing ${wheel_uri} with ${requirements_uri} (role ${role:-unknown})"
  wheel="$(copy_in "${wheel_uri}")"
  requirements="$(copy_in "${requirements_uri}")"
  "${PYTHON}" -m pip install --no-deps "${wheel}"
  "${PYTHON}" -m pip install -r "${requirements}"

  if [[ -n "${packages}" ]]; then
    local -a package_list
    read -r -a package_list <<< "${packages}"
    "${PYTHON}" -m pip install "${package_list[@]}"
  fi

  if [[ "${role}" == "Master" ]]; then
    drop_executor_gpus
    stop_jupyter
  fi
  drop_yarn_gpu_isolation "${role}"

  if command -v nvidia-smi > /dev/null 2>&1; then
    "${PYTHON}" -c 'import sys, xgboost; sys.exit(0 if xgboost.build_info().get("USE_CUDA") else "xgboost was built without CUDA")'
    log "XGBoost with CUDA support is installed"
  fi
  log "installed $(basename "${wheel}")"
}

main "$@"
