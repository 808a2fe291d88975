#!/bin/sh
# The converged Fashion-MNIST twin's campaign (docs: Evidence, "The converged twin"), in the background on
# one core, from a git worktree pinned to one commit so that every run of the campaign is made by the same
# code. It runs the Table 2 campaign, then the training-length dose-response, through the command line's
# sweep (one flagfile per table); each run claims its folder with a file lock, so a second process (on the
# other core, or on another machine sharing the runs folder) never trains the same model: it waits, then
# reads the finished run. Stop it at any time: a rerun resumes every run from its last finished epoch.
#
#   COMMIT=<sha> CORE=1 sh scripts/campaign.sh &            # WORK=/work/campaign by default
#
# Move COMMIT forward only after proving that the campaign's run hashes hold under the new commit
# (tests/test_evidence.py checks the committed runs' config.json against their folder names).
set -eu
COMMIT=${COMMIT:?pin the campaign to a commit: COMMIT=<sha> sh scripts/campaign.sh}
WORK=${WORK:-/work/campaign}
CORE=${CORE:-1}
REPO=$(cd "$(dirname "$0")/.." && pwd)
PYTHON=${PYTHON:-$REPO/.venv/bin/python}
CODE=$WORK/code-$(echo "$COMMIT" | cut -c1-12)
[ -d "$CODE" ] || git -C "$REPO" worktree add --detach "$CODE" "$COMMIT"
mkdir -p "$WORK/runs" "$WORK/logs"
cd "$CODE"
for table in ${TABLES:-table2 dose}; do
  echo "$(date -u +%FT%TZ) start $table at $(git rev-parse --short HEAD)" >> "$WORK/logs/campaign.log"
  PYTHONPATH="$CODE" taskset -c "$CORE" "$PYTHON" -m tf_lottery.cli \
    --flagfile="flags/fashion_mnist_converged_$table.cfg" --runs_dir="$WORK/runs" >> "$WORK/logs/$table.log" 2>&1
  echo "$(date -u +%FT%TZ) done $table" >> "$WORK/logs/campaign.log"
done
