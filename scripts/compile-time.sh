#!/usr/bin/env bash
# What `#[hardened]` adds to the build of the crate that uses it, next to `#[tracing::instrument]`.
#
# Generates, in a temporary directory, a workspace of four crates with the same functions (half of them
# async, small bodies of the kind a service has) and the same dependencies; only the attribute on each
# function differs. Each crate is built once (its dependencies with it), then touched and rebuilt in the
# dev profile, the four in turn, and the best wall time of each is kept.
set -euo pipefail

usage() {
    cat <<'EOF'
usage: scripts/compile-time.sh [options]

Builds a crate of N functions (default 200, half async) in four forms, rebuilds each after touching its
source in the dev profile (incrementally, as that profile does), keeps the best of R rounds (default
3) and prints the milliseconds each attribute adds per function over the plain crate:

  plain        no attribute
  instrument   #[tracing::instrument(skip_all)]
  core         #[hardened(kind = "tool")]
  full         #[hardened(kind = "tool", breaker = "..", rate = 10, bulkhead = 5, audit)] on a sync
               function, plus timeout = "30s", retry = 2 on an async one (they need an async fn)

Exits 1 when what core or full adds per function (wall time, or CPU time with --cpu) is more than the
budget times what instrument adds; 0 with --report-only whatever the ratios; 2 on a bad argument and 3
when the crates cannot be built or measured.

options:
  --functions N        functions per crate, an even number (default 200)
  --rounds R           rebuilds of each form; the best is kept (default 3)
  --core-budget X      fail above X times instrument for core (default 4, or $COMPILE_TIME_CORE_BUDGET)
  --full-budget X      fail above X times instrument for full (default 6, or $COMPILE_TIME_FULL_BUDGET)
  --report-only        print the table and never fail on a ratio
  --cpu                judge the ratios by CPU time (user + system of cargo and rustc) rather than
                       wall time: steadier on a machine that other work keeps busy
  --no-incremental     rebuild the whole crate (CARGO_INCREMENTAL=0) instead of incrementally, as the
                       dev profile does by default: type checking and code generation then count in full
  --target-dir DIR     build there and keep it, so a second run skips the dependencies (default: a
                       directory inside the temporary one, removed at exit); not the workspace's own
                       target directory, but target/compile-time is fine
  --time-passes FORM   after the table, rebuild FORM (plain, instrument, core or full) with
                       `-Z time-passes` (through RUSTC_BOOTSTRAP=1) and print the passes over 10 ms;
                       cargo builds the dependencies again for it (it fingerprints RUSTC_BOOTSTRAP),
                       about a minute more
  --keep               keep the generated workspace and print where it is
  -h, --help           this text

The generated workspace starts from the repository's Cargo.lock, so its dependencies are the versions
the workspace builds with; the run stops if they resolved differently. Needs nothing but cargo.
EOF
}

functions=200
rounds=3
core_budget="${COMPILE_TIME_CORE_BUDGET:-4}"
full_budget="${COMPILE_TIME_FULL_BUDGET:-6}"
report_only=0
gate=best
incremental=1
target_dir=""
time_passes=""
keep=0

while (($# > 0)); do
    case "$1" in
        --functions) functions="${2:?--functions needs a number}"; shift 2 ;;
        --rounds) rounds="${2:?--rounds needs a number}"; shift 2 ;;
        --core-budget) core_budget="${2:?--core-budget needs a number}"; shift 2 ;;
        --full-budget) full_budget="${2:?--full-budget needs a number}"; shift 2 ;;
        --report-only) report_only=1; shift ;;
        --cpu) gate=best_cpu; shift ;;
        --no-incremental) incremental=0; shift ;;
        --target-dir) target_dir="${2:?--target-dir needs a directory}"; shift 2 ;;
        --time-passes) time_passes="${2:?--time-passes needs a form}"; shift 2 ;;
        --keep) keep=1; shift ;;
        -h | --help) usage; exit 0 ;;
        *) echo "unknown argument: $1" >&2; usage >&2; exit 2 ;;
    esac
done

if ! [[ "$functions" =~ ^[1-9][0-9]*$ ]] || ((functions % 2 != 0)); then
    echo "--functions must be a positive even number, got '$functions'" >&2
    exit 2
fi
if ! [[ "$rounds" =~ ^[1-9][0-9]*$ ]]; then
    echo "--rounds must be a positive integer, got '$rounds'" >&2
    exit 2
fi
for budget in "$core_budget" "$full_budget"; do
    if ! [[ "$budget" =~ ^[0-9]+([.][0-9]+)?$ ]]; then
        echo "budgets must be positive numbers, got '$budget'" >&2
        exit 2
    fi
done
forms=(plain instrument core full)
case "$time_passes" in
    "" | plain | instrument | core | full) ;;
    *) echo "--time-passes takes one of: ${forms[*]}; got '$time_passes'" >&2; exit 2 ;;
esac
if ! command -v cargo >/dev/null 2>&1; then
    echo "cargo is not on PATH" >&2
    exit 3
fi

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [[ ! -f "$repo/Cargo.lock" || ! -f "$repo/runtime/Cargo.toml" ]]; then
    echo "$repo does not look like the hardened workspace (no Cargo.lock or runtime/Cargo.toml)" >&2
    exit 3
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/hardened-compile-time.XXXXXX")"
cleanup() {
    if ((keep)); then
        echo "generated workspace kept in $work" >&2
    else
        rm -rf "$work"
    fi
}
trap cleanup EXIT

if [[ -z "$target_dir" ]]; then
    target_dir="$work/target"
else
    target_dir="$(realpath -m "$target_dir")"
    # The workspace's own build would be disturbed by another workspace's (a directory inside it, such
    # as target/compile-time, is separate and fine).
    if [[ "$target_dir" == "$repo/target" ]]; then
        echo "--target-dir must not be the workspace's target directory ($repo/target);" \
            "try $repo/target/compile-time" >&2
        exit 2
    fi
    mkdir -p "$target_dir"
fi

# The attribute each form puts on function `$2`, async when `$3` is 1; the breaker is named after the
# downstream that the function's shape of work would call (the shapes are in `function_source`).
attribute() {
    local form="$1" index="$2" is_async="$3"
    local downstreams=(accounts catalog orders content ranking)
    case "$form" in
        plain) ;;
        instrument) echo '#[tracing::instrument(skip_all)]' ;;
        core) echo '#[hardened(kind = "tool")]' ;;
        full)
            local breaker="${downstreams[index / 2 % 5]}"
            if ((is_async)); then
                echo "#[hardened(kind = \"tool\", breaker = \"$breaker\", rate = 10, bulkhead = 5, timeout = \"30s\", retry = 2, audit)]"
            else
                echo "#[hardened(kind = \"tool\", breaker = \"$breaker\", rate = 10, bulkhead = 5, audit)]"
            fi
            ;;
    esac
}

# Function `$2`: five shapes of small body in turn, each either sync or async (every other function).
# An async function first awaits a shared helper and uses its answer where a sync one uses a constant,
# so every form has exactly the same bodies.
function_source() {
    local form="$1" index="$2" is_async=$(($2 % 2)) name prefix="" value=$(($2 + 1)) preamble=""
    name="$(printf '%03d' "$index")"
    if ((is_async)); then
        prefix="async "
        value="base"
        preamble="    let base = backend($index).await?;"
    fi
    attribute "$form" "$index" "$is_async"
    case $((index / 2 % 5)) in
        0)
            echo "pub ${prefix}fn find_account_$name(id: u64) -> Result<u64, Error> {"
            [[ -n "$preamble" ]] && echo "$preamble"
            echo "    if id == 0 {"
            echo "        return Err(Error::NotFound(id));"
            echo "    }"
            echo "    Ok(id.wrapping_mul($value).rotate_left(7) ^ 0x5bd1_e995)"
            ;;
        1)
            echo "pub ${prefix}fn parse_items_$name(input: &str) -> Result<Vec<u32>, Error> {"
            [[ -n "$preamble" ]] && echo "$preamble"
            echo "    input"
            echo "        .split(',')"
            echo "        .map(|part| part.trim().parse::<u32>().map_err(|_| Error::Invalid(\"item\")))"
            echo "        .filter(|item| !matches!(item, Ok(value) if u64::from(*value) == $value))"
            echo "        .collect()"
            ;;
        2)
            echo "pub ${prefix}fn order_total_$name(prices: &[u32]) -> Result<u64, Error> {"
            [[ -n "$preamble" ]] && echo "$preamble"
            echo "    let total: u64 = prices.iter().map(|&price| u64::from(price)).sum();"
            echo "    if total > 1_000_000 {"
            echo "        return Err(Error::Invalid(\"total\"));"
            echo "    }"
            echo "    Ok(total + $value)"
            ;;
        3)
            echo "pub ${prefix}fn render_summary_$name(title: &str, count: usize) -> Result<String, Error> {"
            [[ -n "$preamble" ]] && echo "$preamble"
            echo "    if title.is_empty() {"
            echo "        return Err(Error::Invalid(\"title\"));"
            echo "    }"
            echo "    Ok(format!(\"{title}: {count} items (#{})\", $value))"
            ;;
        4)
            echo "pub ${prefix}fn score_$name(weight: i64, votes: i64) -> Result<i64, Error> {"
            [[ -n "$preamble" ]] && echo "$preamble"
            echo "    weight"
            echo "        .checked_mul(votes)"
            echo "        .and_then(|score| score.checked_add_unsigned($value))"
            echo "        .ok_or(Error::Invalid(\"score\"))"
            ;;
    esac
    echo "}"
    echo
}

# The workspace: one crate per form, the same manifest for each, the repository's lock file.
generate() {
    {
        echo '[workspace]'
        echo 'resolver = "3"'
        printf 'members = [%s]\n' "$(printf '"%s", ' "${forms[@]}" | sed 's/, $//')"
    } >"$work/Cargo.toml"
    cp "$repo/Cargo.lock" "$work/Cargo.lock"
    local form index
    for form in "${forms[@]}"; do
        mkdir -p "$work/$form/src"
        cat >"$work/$form/Cargo.toml" <<EOF
[package]
name = "compile-time-$form"
version = "0.0.0"
edition = "2024"
publish = false

[dependencies]
hardened = { path = "$repo/runtime" }
thiserror = "2"
tokio = { version = "1", default-features = false, features = ["rt"] }
tracing = "0.1"
EOF
        {
            echo "//! $functions functions, generated by scripts/compile-time.sh (form: $form)."
            echo
            if [[ "$form" == core || "$form" == full ]]; then
                echo 'use hardened::hardened;'
                echo
            fi
            echo '#[derive(Debug, thiserror::Error)]'
            echo 'pub enum Error {'
            echo '    #[error("refused: {0}")]'
            echo '    Refused(#[from] hardened::Rejected),'
            echo '    #[error("{0} not found")]'
            echo '    NotFound(u64),'
            echo '    #[error("invalid {0}")]'
            echo '    Invalid(&'"'"'static str),'
            echo '}'
            echo
            echo 'async fn backend(key: u64) -> Result<u64, Error> {'
            echo '    tokio::task::yield_now().await;'
            echo '    Ok(key.wrapping_add(1))'
            echo '}'
            echo
            for ((index = 0; index < functions; index++)); do
                function_source "$form" "$index"
            done
        } >"$work/$form/src/lib.rs"
    done
}

export CARGO_TARGET_DIR="$target_dir"
export CARGO_TERM_COLOR=never
export CARGO_INCREMENTAL="$incremental"
unset CARGO_BUILD_TARGET_DIR

# Builds one form in the dev profile; on failure shows cargo's output and stops.
build() {
    local form="$1" log="$work/build-$1.log"
    shift
    if ! (cd "$work" && cargo build --package "compile-time-$form" "$@") >"$log" 2>&1; then
        echo "building the $form form failed; cargo said:" >&2
        cat "$log" >&2
        exit 3
    fi
}

echo "generating $functions functions in four forms in $work" >&2
generate

echo "building the four forms and their dependencies once (target directory $target_dir)..." >&2
for form in "${forms[@]}"; do
    build "$form"
done

# Every dependency must be the version the workspace's lock file says.
drifted="$(comm -23 \
    <(awk '/^name = / { name = $3 } /^version = / { print name, $3 }' "$work/Cargo.lock" |
        grep -v '^"compile-time-' | sort -u) \
    <(awk '/^name = / { name = $3 } /^version = / { print name, $3 }' "$repo/Cargo.lock" | sort -u))"
if [[ -n "$drifted" ]]; then
    echo "the generated workspace resolved dependencies the repository's Cargo.lock does not have:" >&2
    echo "$drifted" >&2
    exit 3
fi

# Wall time is what the gate uses; the CPU time of cargo and rustc (user + system), which other processes
# on the machine disturb less, is printed beside it to show how much of a difference is noise.
export LC_NUMERIC=C
TIMEFORMAT='%3R %3U %3S'
declare -A best times best_cpu
for ((round = 1; round <= rounds; round++)); do
    echo "round $round of $rounds" >&2
    # The forms in turn within a round, so a burst of load elsewhere falls on all of them alike.
    for form in "${forms[@]}"; do
        touch "$work/$form/src/lib.rs"
        { time build "$form" --offline 2>&3; } 3>&2 2>"$work/time"
        read -r elapsed cpu < <(awk '{ printf "%d %d\n", $1 * 1000, ($2 + $3) * 1000 }' "$work/time")
        # A rebuild that did not compile the crate would measure nothing.
        if ! grep -q "Compiling compile-time-$form " "$work/build-$form.log"; then
            echo "touching $form/src/lib.rs did not rebuild compile-time-$form; cargo said:" >&2
            cat "$work/build-$form.log" >&2
            exit 3
        fi
        times[$form]="${times[$form]:-}${times[$form]:+ }$elapsed"
        if [[ -z "${best[$form]:-}" ]] || ((elapsed < best[$form])); then
            best[$form]="$elapsed"
        fi
        if [[ -z "${best_cpu[$form]:-}" ]] || ((cpu < best_cpu[$form])); then
            best_cpu[$form]="$cpu"
        fi
    done
done

per_function() { awk -v a="$1" -v b="$2" -v n="$functions" 'BEGIN { printf "%.2f", (a - b) / n }'; }
above() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a > b) }'; }

declare -A labels=(
    [plain]="plain"
    [instrument]='#[tracing::instrument(skip_all)]'
    [core]='#[hardened(kind = "tool")]'
    [full]='#[hardened(..guards, audit)]'
)
echo
echo "$functions functions ($((functions / 2)) async), rebuilt after a touch in the dev profile," \
    "CARGO_INCREMENTAL=$incremental, best of $rounds; $(rustc --version)"
printf '%-34s %8s %7s %8s %7s  %s\n' "form" "wall ms" "ms/fn" "CPU ms" "ms/fn" "wall ms of each round"
declare -A added added_cpu
for form in "${forms[@]}"; do
    column=""
    cpu_column=""
    if [[ "$form" != plain ]]; then
        added[$form]="$(per_function "${best[$form]}" "${best[plain]}")"
        added_cpu[$form]="$(per_function "${best_cpu[$form]}" "${best_cpu[plain]}")"
        column="+${added[$form]}"
        cpu_column="+${added_cpu[$form]}"
    fi
    printf '%-34s %8s %7s %8s %7s  %s\n' "${labels[$form]}" "${best[$form]}" "$column" \
        "${best_cpu[$form]}" "$cpu_column" "${times[$form]}"
done
echo

# What `$1` adds over plain, as a multiple of what instrument adds, from the best times in array `$2`.
ratio() {
    local -n of="$2"
    awk -v form="${of[$1]}" -v instrument="${of[instrument]}" -v plain="${of[plain]}" \
        'BEGIN { if (instrument <= plain) print "n/a"; else printf "%.1f", (form - plain) / (instrument - plain) }'
}

failed=()
measure="wall"
[[ "$gate" == best_cpu ]] && measure="CPU"
if [[ "$(ratio core "$gate")" == n/a ]]; then
    echo "#[tracing::instrument] added no $measure time: the ratios cannot be computed;" \
        "the machine is probably too noisy"
    failed+=("no ratio")
else
    for form in core full; do
        budget="$core_budget"
        [[ "$form" == full ]] && budget="$full_budget"
        judged="$(ratio "$form" "$gate")"
        verdict="within the budget of ${budget}x ($measure)"
        if above "$judged" "$budget"; then
            verdict="ABOVE the budget of ${budget}x ($measure)"
            failed+=("$form ${judged}x > ${budget}x")
        fi
        printf '%-4s / instrument: %5sx wall, %5sx CPU  %s\n' "$form" "$(ratio "$form" best)" \
            "$(ratio "$form" best_cpu)" "$verdict"
    done
fi

if [[ -n "$time_passes" ]]; then
    echo
    echo "-Z time-passes on the $time_passes form (passes of 10 ms or more, in the order they end):"
    # `cargo rustc` passes the flag to this crate only; RUSTC_BOOTSTRAP lets a stable rustc take -Z. The
    # first build under it starts a new incremental session, so the second is the one shown.
    for _ in 1 2; do
        touch "$work/$time_passes/src/lib.rs"
        (cd "$work" && RUSTC_BOOTSTRAP=1 cargo rustc --offline --package "compile-time-$time_passes" \
            -- -Z time-passes) >"$work/time-passes.log" 2>&1 || {
            echo "the -Z time-passes build failed; cargo said:" >&2
            cat "$work/time-passes.log" >&2
            exit 3
        }
    done
    awk '/^time: / { seconds = $2; sub(/;$/, "", seconds); if (seconds >= 0.010) print }' \
        "$work/time-passes.log"
fi

echo
if ((${#failed[@]} > 0)); then
    if ((report_only)); then
        echo "over budget (${failed[*]}); --report-only: not failing"
        exit 0
    fi
    echo "over budget: ${failed[*]}"
    exit 1
fi
echo "both ratios within budget (core <= ${core_budget}x, full <= ${full_budget}x instrument, $measure time)"
