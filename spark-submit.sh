#!/usr/bin/env bash
# The front door for engineers and schedulers:
#   ./spark-submit.sh [--master URL] [--settings FILE] [--conf k=v]... jobs/<job>.py [job args]
# Packages pds_spark for --py-files, passes the Delta jars, conf/spark-defaults.conf
# and the master (local[*] by default, or PDS_SPARK_MASTER), and returns the job's
# exit code unchanged. On a local master conf/spark-local.conf is added (jars/local/
# on the driver's class path); on a cluster (any other master) conf/spark-cluster.conf
# (authentication, encrypted RPC and disk blocks); on standalone, the shared secret is
# read from the file PDS_SPARK_SECRET_FILE (mode 600), never from the command line.
# --settings FILE passes job settings to the job (platform settings come from
# $PDS_SETTINGS, the deployment's file, or conf/pds.toml). SPARK_USER, HADOOP_USER_NAME
# and HADOOP_PROXY_USER are removed: the caller is the authenticated user, not a choice.
set -euo pipefail
unset SPARK_USER HADOOP_USER_NAME HADOOP_PROXY_USER
root=$(cd "$(dirname "$0")" && pwd)
usage() { awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"; }

master=${PDS_SPARK_MASTER:-local[*]}
settings=${PDS_SETTINGS:-$root/conf/pds.toml}
job_settings=()
properties=${PDS_SPARK_PROPERTIES:-$root/conf/spark-defaults.conf}
extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    --master) master=$2; shift 2 ;;
    --master=*) master=${1#*=}; shift ;;
    --settings) job_settings=(--settings "$(cd "$(dirname "$2")" && pwd)/$(basename "$2")"); shift 2 ;;
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

# The local or the cluster profile (and on standalone the secret) added to the
# properties, in a file only this user can read, removed when the job ends.
profile=()
merged=$(umask 077 && mktemp "${TMPDIR:-/tmp}/pds-spark-props.XXXXXX")
trap 'rm -f "$merged"' EXIT
case "$master" in
  local*)
    local_jar=$root/jars/local/pds-spark-hadoop.jar
    [ -s "$local_jar" ] || { echo "spark-submit.sh: run bin/bootstrap first (no $local_jar)" >&2; exit 2; }
    cat "$properties" "$root/conf/spark-local.conf" > "$merged"
    properties=$merged
    profile=(--driver-class-path "$local_jar") ;;
  *)
    cat "$properties" "$root/conf/spark-cluster.conf" > "$merged"
    case "$master" in
      spark://*)
        secret_file=${PDS_SPARK_SECRET_FILE:-}
        [ -n "$secret_file" ] && [ -s "$secret_file" ] \
          || { echo "spark-submit.sh: a standalone cluster needs its shared secret: set PDS_SPARK_SECRET_FILE" >&2; exit 2; }
        if [ -n "$(find "$secret_file" -perm /077 2>/dev/null)" ]; then
          echo "spark-submit.sh: $secret_file is readable by others; chmod 600 it" >&2; exit 2
        fi
        printf 'spark.authenticate.secret %s\n' "$(head -n1 "$secret_file")" >> "$merged" ;;
    esac
    properties=$merged
    profile=(--files "$root/conf/log4j2.properties") ;;
esac

# On this machine (local or loopback cluster) keep Spark on loopback.
case "$master" in local*|*127.0.0.1*|*localhost*) export SPARK_LOCAL_IP=${SPARK_LOCAL_IP:-127.0.0.1} ;; esac
export PDS_SETTINGS=$(cd "$(dirname "$settings")" && pwd)/$(basename "$settings")
export PYSPARK_PYTHON=${PYSPARK_PYTHON:-$root/.venv/bin/python}
export PYSPARK_DRIVER_PYTHON=${PYSPARK_DRIVER_PYTHON:-$root/.venv/bin/python}
set +e
"$root/.venv/bin/spark-submit" \
  --master "$master" \
  --properties-file "$properties" \
  --driver-java-options "-Dlog4j2.configurationFile=file:$root/conf/log4j2.properties" \
  --jars "$jar_list" \
  --py-files "$zip_path" \
  ${profile[@]+"${profile[@]}"} \
  ${extra[@]+"${extra[@]}"} \
  "$job" ${job_settings[@]+"${job_settings[@]}"} "$@" &
child=$!
trap 'kill -TERM "$child" 2>/dev/null' TERM INT
wait "$child"
code=$?
if [ "$code" -gt 128 ] && kill -0 "$child" 2>/dev/null; then wait "$child"; code=$?; fi
exit "$code"
