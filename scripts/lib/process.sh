# Process helpers shared by scripts/kafka.sh and scripts/kafka-cluster.sh;
# sourced, not run.

# A process that exists and is not a zombie (a SIGKILLed JVM may linger as
# one until its new parent reaps it).
alive() {
  local st
  st=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
  case "$st" in Z*) return 1 ;; esac
}

# Waits up to $2 half-seconds for process $1 to be gone.
wait_gone() {
  local i
  for ((i = 0; i < $2; i++)); do
    alive "$1" || return 0
    sleep 0.5
  done
  ! alive "$1"
}

# The live process named by pid file $1, printed; false when none runs.
pidfile_pid() {
  local p
  [ -f "$1" ] || return 1
  p=$(cat "$1")
  [ -n "$p" ] && alive "$p" || return 1
  echo "$p"
}

# Stops process $1 in order: SIGCONT (it may be frozen), SIGTERM, up to $2
# half-seconds to go, then SIGKILL. $3 names it in the messages (the
# caller's `say`).
stop_pid() {
  kill -CONT "$1" 2>/dev/null || true
  kill -TERM "$1" 2>/dev/null || true
  if ! wait_gone "$1" "$2"; then
    say "$3 ($1) did not stop within $(($2 / 2)) s; killing it"
    kill_pid "$1"
  fi
}

# SIGKILL to process $1; returns once it is gone (its ports released).
kill_pid() {
  kill -KILL "$1" 2>/dev/null || true
  wait_gone "$1" 20 || say "warning: process $1 is still there"
}
