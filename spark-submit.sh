#!/usr/bin/env bash
# The front door for engineers and schedulers:
#   ./spark-submit.sh [--master URL] [--settings FILE] [--conf k=v]... jobs/<job>.py [job args]
# Packages pds_spark for --py-files, passes the Delta jars, conf/spark-defaults.conf
# and the master (local[*] by default, or PDS_SPARK_MASTER), and returns the job's
# exit code unchanged.
set -euo pipefail
root=$(cd "$(dirname "$0")" && pwd)
usage() { sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//'; }

master=${PDS_SPARK_MASTER:-local[*]}
settings=${PDS_SETTINGS:-$root/conf/pds.toml}
properties=${PDS_SPARK_PROPERTIES:-$root/conf/spark-defaults.conf}
extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    --master) master=$2; shift 2 ;;
    --master=*) master=${1#*=}; shift ;;
    --settings) settings=$2; shift 2 ;;
    --properties-file) properties=$2; shift 2 ;;
    --conf) extra+=(--conf "$2"); shift 2 ;;
    -h|--help) usage; exit 0 ;;
    -*) echo "spark-submit.sh: unknown option $1 (options go before the job file)" >&2; usage >&2; exit 2 ;;
    *) break ;;
  esac
done
[ $# -ge 1 ] || { usage >&2; exit 2; }
job=$1; shift
[ -f "$job" ] || { echo "spark-submit.sh: no such job file: $job" >&2; exit 2; }
[ -x "$root/.venv/bin/spark-submit" ] || { echo "spark-submit.sh: run bin/bootstrap first (no .venv)" >&2; exit 2; }
shopt -s nullglob
jars=("$root"/jars/*.jar)
[ ${#jars[@]} -gt 0 ] || { echo "spark-submit.sh: run bin/bootstrap first (no jars in jars/)" >&2; exit 2; }
jar_list=$(IFS=,; echo "${jars[*]}")

# Package the library for the executors (atomic: concurrent submits never see half a zip).
mkdir -p "$root/build"
zip_path="$root/build/pds_spark.zip"
"$root/.venv/bin/python" - "$root" "$zip_path" <<'PY'
import os, sys, tempfile, zipfile
root, target = sys.argv[1], sys.argv[2]
fd, tmp = tempfile.mkstemp(dir=os.path.dirname(target), suffix=".zip")
with os.fdopen(fd, "wb") as fh, zipfile.ZipFile(fh, "w", zipfile.ZIP_DEFLATED) as z:
    for folder, dirs, files in os.walk(os.path.join(root, "pds_spark")):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for name in sorted(files):
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                z.write(path, os.path.relpath(path, root))
os.replace(tmp, target)
PY

# On this machine (local or loopback cluster) keep Spark on loopback.
case "$master" in local*|*127.0.0.1*|*localhost*) export SPARK_LOCAL_IP=${SPARK_LOCAL_IP:-127.0.0.1} ;; esac
export PDS_SETTINGS=$(cd "$(dirname "$settings")" && pwd)/$(basename "$settings")
export PYSPARK_PYTHON=${PYSPARK_PYTHON:-$root/.venv/bin/python}
export PYSPARK_DRIVER_PYTHON=${PYSPARK_DRIVER_PYTHON:-$root/.venv/bin/python}
exec "$root/.venv/bin/spark-submit" \
  --master "$master" \
  --properties-file "$properties" \
  --driver-java-options "-Dlog4j2.configurationFile=file:$root/conf/log4j2.properties" \
  --jars "$jar_list" \
  --py-files "$zip_path" \
  ${extra[@]+"${extra[@]}"} \
  "$job" "$@"
