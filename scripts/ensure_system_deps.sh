#!/usr/bin/env bash
# Install the Debian packages the tests start for real (prometheus, promtool,
# victoria-metrics, Java 17 for Spark, chromium) when they are missing. As root this
# installs them; otherwise it
# prints the exact command and stops, so nothing is silently skipped.
set -euo pipefail

missing=()
command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)  # TLS test certificates
command -v victoria-metrics >/dev/null 2>&1 || missing+=(victoria-metrics)  # 2nd metrics engine
command -v java >/dev/null 2>&1 || missing+=(openjdk-17-jre-headless)  # Spark (RUM push-down)
[ ${#missing[@]} -eq 0 ] && exit 0

command="apt-get update && apt-get install -y --no-install-recommends ${missing[*]}"
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "missing system packages: ${missing[*]}" >&2
    echo "install them with:  sudo sh -c '$command'" >&2
    exit 1
fi
echo "installing Debian packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "installed: ${missing[*]}"
