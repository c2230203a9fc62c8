#!/usr/bin/env bash
# Builds what the host command and the Dockerfile need:
#   target/app.jar      the Spring Boot jar (Maven), copied into the image
#   target/app/         that jar extracted (Spring Boot's `-Djarmode=tools extract`)
#   target/app/app.jsa  a class-data-sharing archive trained on it (~2x faster start)
# Does nothing when pom.xml and src/ have not changed since the last full run
# (FORCE=1 rebuilds).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

JVM_FLAGS=(-XX:TieredStopAtLevel=1 -XX:+UseSerialGC)

# target/.prepared marks a complete run; any source change after it rebuilds.
if [ "${FORCE:-0}" != 1 ] && [ -f target/.prepared ] && [ -f target/app.jar ] &&
  [ -f target/app/app.jar ] && [ -z "$(find pom.xml src -newer target/.prepared -print -quit)" ]; then
  echo "java-spring-http: target/app.jar and target/app/ are up to date"
  exit 0
fi
rm -f target/.prepared

log="$(mktemp)"
# The training run's Tomcat writes its work directories under java.io.tmpdir.
jtmp="$(mktemp -d)"
trap 'rm -rf "$log" "$jtmp"' EXIT
if ! mvn -q -B package -DskipTests >"$log" 2>&1; then
  cat "$log" >&2
  echo "java-spring-http: mvn package failed" >&2
  exit 1
fi

rm -rf target/app
java -Djarmode=tools -jar target/app.jar extract --destination target/app >/dev/null

# Training run: start the application context and exit before serving
# (spring.context.exit=onRefresh), recording the loaded classes. Same flags and
# the same relative jar path as the host command, or the JVM ignores the archive.
if ! java -XX:ArchiveClassesAtExit=target/app/app.jsa "${JVM_FLAGS[@]}" \
  -Djava.io.tmpdir="$jtmp" -Dspring.context.exit=onRefresh -jar target/app/app.jar >target/cds-training.log 2>&1; then
  # Only an optimisation: the JVM runs without the archive, just slower.
  echo "java-spring-http: WARNING: CDS training failed (see target/cds-training.log)" >&2
  rm -f target/app/app.jsa
fi
touch target/.prepared
echo "java-spring-http: built target/app.jar ($(du -h target/app.jar | cut -f1)) and target/app/"
