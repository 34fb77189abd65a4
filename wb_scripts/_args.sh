# shellcheck shell=bash
# Sourced by docker/{build,run,publish_image} and wb_scripts/{preprocess,benchmark,submit,
# check_aws}:
# the repo's location, one-line errors, required variables and printing commands.

REPO_ROOT="$(cd -P "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

die() {
    echo "error: $*" >&2
    exit 1
}

# require_env NAME DESCRIPTION [NAME DESCRIPTION ...]: stop at the first unset variable.
require_env() {
    while [ $# -ge 2 ]; do
        [ -n "${!1:-}" ] || die "$1 is not set ($2; see --help)"
        shift 2
    done
}

# need_value OPTION VALUE: an option's value is there (not missing, not another option).
need_value() {
    case "${2:-}" in
        "" | -*) die "$1 needs a value (see --help)" ;;
    esac
}

# quote_cmd CMD...: the command as one line that a shell would run as the same words.
quote_cmd() {
    local line="" word
    for word in "$@"; do
        line+="$(printf '%q' "$word") "
    done
    echo "${line% }"
}

# run_or_print CMD...: run the command, or only print it when DRY_RUN=true.
run_or_print() {
    if [ "${DRY_RUN:-false}" = true ]; then
        quote_cmd "$@"
    else
        "$@"
    fi
}

# prefer_repo_venv: use .venv/bin (made by wb_scripts/_venv.sh) when there is one; inside
# the Docker image there is none and rastervision/python are already on PATH.
prefer_repo_venv() {
    if [ -x "${REPO_ROOT}/.venv/bin/python" ]; then
        export PATH="${REPO_ROOT}/.venv/bin:${PATH}"
    fi
}

# ---- wb_scripts/preprocess and wb_scripts/benchmark: the rastervision command -------------

# parse_rv_options ARGS...: the wrappers' shared options (the caller defines usage). Sets
# RUNNER, SPLITS, PROFILE, DRY_RUN, RV_GLOBAL (options before "run") and EXPERIMENT_ARGS
# (after --: KEY=VALUE becomes "-a KEY VALUE", anything else is passed as it is).
parse_rv_options() {
    RUNNER="batch"
    DRY_RUN=false
    RV_GLOBAL=()
    EXPERIMENT_ARGS=()
    while [ $# -gt 0 ]; do
        case "$1" in
            --help | -h) usage; exit 0 ;;
            --runner) need_value "$1" "${2:-}"; RUNNER="$2"; shift 2 ;;
            --splits) need_value "$1" "${2:-}"; SPLITS="$2"; shift 2 ;;
            --profile) need_value "$1" "${2:-}"; PROFILE="$2"; shift 2 ;;
            --dry-run) DRY_RUN=true; shift ;;
            -v | --verbose) RV_GLOBAL+=(-v); shift ;;
            --) shift; break ;;
            *) die "unknown option $1 (see --help)" ;;
        esac
    done
    local word
    for word in "$@"; do
        if [[ "$word" =~ ^([A-Za-z_][A-Za-z0-9_]*)=(.*)$ ]]; then
            EXPERIMENT_ARGS+=(-a "${BASH_REMATCH[1]}" "${BASH_REMATCH[2]}")
        else
            EXPERIMENT_ARGS+=("$word")
        fi
    done
    case "$RUNNER" in
        batch | local | inprocess) ;;
        *) die "--runner must be batch, local or inprocess, not '$RUNNER'" ;;
    esac
    [[ "$SPLITS" =~ ^[1-9][0-9]*$ ]] || die "SPLITS must be a whole number above 0, not '$SPLITS'"
    if [ "$DRY_RUN" = true ] && [ "$RUNNER" != batch ]; then
        die "--dry-run shows the AWS Batch jobs that would be submitted: it needs --runner batch"
    fi
    # Batch settings come from a profile; local runs need one only if asked for.
    if [ "$RUNNER" = batch ]; then
        PROFILE="${PROFILE:-wbbenchmark}"
    fi
}

RV_ARGS=()

# arg_from_env KEY NAME [KEY NAME ...]: pass "-a KEY $NAME" for each variable that is set.
arg_from_env() {
    while [ $# -ge 2 ]; do
        [ -z "${!2:-}" ] || RV_ARGS+=(-a "$1" "${!2}")
        shift 2
    done
}

# run_rastervision MODULE COMMAND...: show the rastervision command, then become it.
run_rastervision() {
    local cmd=(rastervision)
    [ -z "${PROFILE:-}" ] || cmd+=(-p "$PROFILE")
    [ -z "${RV_TMP_DIR:-}" ] || cmd+=(--tmpdir "$RV_TMP_DIR")
    cmd+=("${RV_GLOBAL[@]}" run "$RUNNER" "$@" "${RV_ARGS[@]}" -s "$SPLITS" "${EXPERIMENT_ARGS[@]}")
    if [ "$DRY_RUN" = true ]; then
        # benchmark.pipeline.batch_runner prints the job graph instead of submitting it.
        export BENCHMARK_BATCH_DRY_RUN=1
    fi
    prefer_repo_venv
    echo "+ $(quote_cmd "${cmd[@]}")" >&2
    exec "${cmd[@]}"
}
