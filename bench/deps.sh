#!/bin/sh
# Installs what `make bench` drives, when it is missing and we are root: nginx with its stream
# module, HAProxy, wrk, dnsperf, dnsmasq. Services are not started (policy-rc.d), so nothing
# binds port 80 behind the bench's back. Not root: says what is missing; the bench leaves those
# columns empty.
set -eu
need=""
has() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ]; }
has nginx || need="$need nginx"
[ -f /usr/lib/nginx/modules/ngx_stream_module.so ] || need="$need libnginx-mod-stream"
has haproxy || need="$need haproxy"
has wrk || need="$need wrk"
has dnsperf || need="$need dnsperf"
has dnsmasq || need="$need dnsmasq-base"
has taskset || need="$need util-linux"
[ -z "$need" ] && exit 0
if [ "$(id -u)" != 0 ]; then
	echo "bench: not root, so not installing:$need (the bench skips what they would measure)" >&2
	exit 0
fi
if [ ! -e /usr/sbin/policy-rc.d ]; then
	printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
	chmod 755 /usr/sbin/policy-rc.d
	trap 'rm -f /usr/sbin/policy-rc.d' EXIT
fi
echo "bench: installing$need"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086 # one word per package
apt-get install -y -qq --no-install-recommends $need >/dev/null
