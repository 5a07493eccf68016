#!/bin/sh
# Installs what `make bench` drives, when it is missing and we are root: nginx with its stream
# module, HAProxy, wrk, dnsperf, dnsmasq with apt; Portkey's AI gateway with npm into
# build/bench/portkey (bench/portkey/package.json: version 1.15.2 and the dependency versions of
# its own lockfile). Services are not started (policy-rc.d), so nothing binds port 80 behind the
# bench's back. Not root: says what is missing; the bench leaves those columns empty.
set -eu

# portkey installs Portkey's gateway unless the pinned version is there already.
portkey() {
	dir=build/bench/portkey
	want=$(sed -n 's/^ *"@portkey-ai\/gateway": "\(.*\)"$/\1/p' bench/portkey/package.json)
	have=$(sed -n 's/^ *"version": "\(.*\)",$/\1/p' "$dir/node_modules/@portkey-ai/gateway/package.json" 2>/dev/null || true)
	if [ -n "$have" ] && [ "$have" = "$want" ] && cmp -s bench/portkey/package.json "$dir/package.json"; then
		return 0
	fi
	if ! command -v npm >/dev/null 2>&1 || ! command -v node >/dev/null 2>&1; then
		echo "bench: no node or npm, so not installing Portkey's gateway (its column stays empty)" >&2
		return 0
	fi
	if [ "$(id -u)" != 0 ]; then
		echo "bench: not root, so not installing Portkey's gateway $want (its column stays empty)" >&2
		return 0
	fi
	echo "bench: installing Portkey's gateway $want into $dir"
	rm -rf "$dir" && mkdir -p "$dir"
	cp bench/portkey/package.json "$dir/package.json"
	# --ignore-scripts: its postinstall (patch-package) has no patches in the published package.
	if ! (cd "$dir" && npm install --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null); then
		echo "bench: npm could not install Portkey's gateway (its column stays empty)" >&2
		rm -rf "$dir"
	fi
}
portkey
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
