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
