# shellcheck shell=bash
# netns.sh: network namespaces for the cluster tests (sourced; bash).
#
# One "hub" namespace holds a bridge; every member namespace gets a veth pair
# whose far end is enslaved to that bridge. Nothing is connected to the host's
# network: the hub has no uplink and no route out, so all traffic stays on
# this machine, between the namespaces (docs/cluster.md "Failure tests").
#
#   nsx_init PREFIX SUBNET   PREFIX: namespace name prefix (unique per run),
#                            SUBNET: the first three octets, e.g. 10.213.7
#   nsx_add NAME HOSTNUM     namespace PREFIX-NAME with address SUBNET.HOSTNUM/24
#                            on its veth end, lo up; prints nothing
#   nsx_exec NAME CMD...     runs CMD inside PREFIX-NAME
#   nsx_kill NAME            kill -9 every process inside PREFIX-NAME
#   nsx_link NAME up|down    the hub-side end of NAME's veth (a partition)
#   nsx_teardown             kill -9 everything in every namespace of this
#                            run, delete them (the veths go with them)
# Needs root (or CAP_NET_ADMIN + CAP_SYS_ADMIN) and iproute2; nsx_usable
# answers whether namespaces can be created here.

NSX_PREFIX=
NSX_SUBNET=
NSX_NAMES=()

nsx_usable() {
  command -v ip >/dev/null || return 1
  [ "$(id -u)" -eq 0 ] || return 1
  local probe="mtcprobe$$"
  ip netns add "$probe" 2>/dev/null || return 1
  ip netns del "$probe" 2>/dev/null || true
  ip link add "${probe}a" type veth peer name "${probe}b" 2>/dev/null || return 1
  ip link del "${probe}a" 2>/dev/null || true
}

nsx_init() {
  NSX_PREFIX=$1
  NSX_SUBNET=$2
  ip netns add "$NSX_PREFIX-hub"
  NSX_NAMES+=(hub)
  ip -n "$NSX_PREFIX-hub" link set lo up
  ip -n "$NSX_PREFIX-hub" link add br0 type bridge
  ip -n "$NSX_PREFIX-hub" link set br0 up
}

nsx_add() {
  local name=$1 num=$2 ns="$NSX_PREFIX-$1"
  # interface names are limited to 15 characters: short, unique per run
  local a="v${num}a$$" b="v${num}b$$"
  a=${a:0:15}
  b=${b:0:15}
  ip netns add "$ns"
  NSX_NAMES+=("$name")
  ip link add "$a" type veth peer name "$b"
  ip link set "$a" netns "$ns"
  ip link set "$b" netns "$NSX_PREFIX-hub"
  ip -n "$ns" link set lo up
  ip -n "$ns" link set "$a" name eth0
  ip -n "$ns" addr add "$NSX_SUBNET.$num/24" dev eth0
  ip -n "$ns" link set eth0 up
  ip -n "$NSX_PREFIX-hub" link set "$b" master br0
  ip -n "$NSX_PREFIX-hub" link set "$b" up
  eval "NSX_HUBIF_$name=$b"
}

nsx_exec() {
  local name=$1
  shift
  ip netns exec "$NSX_PREFIX-$name" "$@"
}

nsx_kill() {
  local pids
  pids=$(ip netns pids "$NSX_PREFIX-$1" 2>/dev/null || true)
  # shellcheck disable=SC2086
  [ -z "$pids" ] || kill -9 $pids 2>/dev/null || true
}

nsx_link() {
  local var="NSX_HUBIF_$1"
  ip -n "$NSX_PREFIX-hub" link set "${!var}" "$2"
}

nsx_teardown() {
  local n
  [ -n "$NSX_PREFIX" ] || return 0
  for n in "${NSX_NAMES[@]}"; do nsx_kill "$n"; done
  for n in "${NSX_NAMES[@]}"; do ip netns del "$NSX_PREFIX-$n" 2>/dev/null || true; done
  NSX_NAMES=()
}
