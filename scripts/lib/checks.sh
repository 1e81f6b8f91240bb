# A named check for the image scripts (image-smoke.sh, kube-play.sh):
# `check WHAT COMMAND...` runs the command and prints one line, "<suite>:
# ok: WHAT", or "<suite>: FAILED: WHAT" and the tally, and exits 1 at the
# first failure. Sourced, not run; the caller sets `suite`, and prints the
# tally ("N passed, N failed") at its end with `checks_done`.

passed=0 failed=0

check() {
  local what=$1
  shift
  if "$@"; then
    echo "$suite: ok: $what"
    passed=$((passed + 1))
  else
    echo "$suite: FAILED: $what" >&2
    failed=$((failed + 1))
    checks_done
    exit 1
  fi
}

checks_done() { echo "$passed passed, $failed failed"; }
