#!/bin/bash
# mirrorcap capture: runs as root on the collector (Amazon Linux 2023), sent by SSM Run Command
# (AWS-RunShellScript) as rendered by mirrorcap.collector.command. Captures this capture's mirrored
# traffic (VXLAN on UDP 4789 with this session's VNI) on the default-route interface, uploads every file
# to S3 as soon as tcpdump closes it, and uploads manifest.json last. The collector has no S3 permission:
# every upload is a POST with the capture's upload grant, which S3 accepts only under this capture's
# prefix (mirrorcap.collector.grant). See docs/collector.md.
#
# Exit codes; mirrorcap.collector.manifest.CaptureExit holds the same numbers:
readonly EXIT_COMPLETE=0          # the whole window captured, every file and the manifest in S3
readonly EXIT_BAD_ARGUMENTS=2     # refused to start; no manifest
readonly EXIT_STOPPED_EARLY=3     # stopped by a signal before the window ended; all delivered
readonly EXIT_DISK_LIMIT=4        # the disk guard stopped it (or it could not start for lack of disk); all delivered
readonly EXIT_CAPTURE_FAILED=5    # tcpdump could not run or died; what it wrote is delivered
readonly EXIT_UPLOAD_FAILED=6     # some pcap is not in S3 (manifest.not_delivered names them; left on disk)
readonly EXIT_MANIFEST_FAILED=7   # the manifest itself could not be uploaded (it is on disk only)

set -uo pipefail
export LC_ALL=C TZ=UTC  # UTC file names and timestamps; byte-wise regexes

readonly DATA_ROOT=/var/lib/mirrorcap   # on the root volume: /tmp is RAM (tmpfs) on Amazon Linux 2023
readonly VXLAN_PORT=4789
readonly STOP_GRACE_SECONDS=15          # tcpdump gets this long after SIGINT to close its last file
# libpcap hands packets to tcpdump in ring blocks, retired when full or after tcpdump's 1 s buffer timeout;
# the block still open when tcpdump stops is never written. Stopping this long after the window ends (or
# after a stop request) writes every packet that arrived before then.
readonly DRAIN_SECONDS=2
readonly LISTEN_WAIT_SECONDS=30
readonly RESERVE_FLOOR_MB=256           # never eat the last of the root volume: the OS and the agent need it
readonly SOCKET_BUFFER_KIB=65536        # libpcap ring: absorbs bursts while tcpdump writes (see bench/capture_loss.py)
readonly MANIFEST_SECONDS=60            # kept back from the finish budget for writing and uploading the manifest
readonly REQUIRED_TOOLS=(tcpdump timeout curl flock sha256sum ip df stat awk)

readonly SCRIPT_PATH="$0"
readonly SCRIPT_ARGS=("$@")

now() { date -u +%Y-%m-%dT%H:%M:%SZ; }
log() { printf '%s %s\n' "$(now)" "$*" | tee -a "$log_file"; }
warn() { printf '%s %s\n' "$(now)" "$*" | tee -a "$log_file" >&2; }
die_usage() { printf 'mirrorcap capture: %s\n' "$*" >&2; exit "$EXIT_BAD_ARGUMENTS"; }

# Every value was validated by the renderer already; checking again here keeps a hand-run or altered
# command from reaching tcpdump, the filter or a path with anything unexpected.
parse_args() {
    deliver_file=""
    while (($#)); do
        (($# >= 2)) || die_usage "missing value for $1"
        case $1 in
            --capture-id) capture_id=$2 ;;
            --bucket) bucket=$2 ;;
            --key-prefix) key_prefix=$2 ;;
            --duration) duration=$2 ;;
            --vni) vni=$2 ;;
            --snaplen) snaplen=$2 ;;
            --rotate-megabytes) rotate_megabytes=$2 ;;
            --rotate-seconds) rotate_seconds=$2 ;;
            --finish-seconds) finish_seconds=$2 ;;
            --deliver) deliver_file=$2 ;;
            *) die_usage "unknown argument: $1" ;;
        esac
        shift 2
    done
    [[ ${capture_id-} =~ ^[a-z0-9][a-z0-9-]{2,62}$ ]] || die_usage "invalid --capture-id"
    [[ ${bucket-} =~ ^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$ ]] || die_usage "invalid --bucket"
    [[ ${key_prefix-} == "captures/$capture_id/" ]] || die_usage "--key-prefix must be captures/<capture-id>/"
    check_int duration "${duration-}" 1 86400
    check_int vni "${vni-}" 1 16777215
    check_int snaplen "${snaplen-}" 0 65535
    check_int rotate-megabytes "${rotate_megabytes-}" 1 1000
    check_int rotate-seconds "${rotate_seconds-}" 5 3600
    check_int finish-seconds "${finish_seconds-}" 60 86400
    work="$DATA_ROOT/$capture_id"
    grant_file="$DATA_ROOT/$capture_id.grant"  # written by the command before this script, renewed later
    upload_timeout=$((60 + 2 * rotate_megabytes))  # at least 0.5 MB/s to S3
}

check_int() {
    # No leading zeros: bash arithmetic would read them as octal.
    [[ $2 =~ ^(0|[1-9][0-9]{0,8})$ ]] && (($2 >= $3 && $2 <= $4)) || die_usage "--$1 must be an integer in $3..$4"
}

# --- delivery: shared by tcpdump's post-rotate hook and the final sweep -----------------------------------

# Local names are tcpdump's: <start>.pcap, then <start>.pcap1, .pcap2 ... for size rotations inside one
# time slot. S3 keys sort in capture order: <capture-id>-<start>-<NNNNN>.pcap.
key_for() {
    local base=${1##*/}
    local stamp=${base%%.pcap*} index=${base##*.pcap}
    printf '%s%s-%s-%05d.pcap' "$key_prefix" "$capture_id" "$stamp" "${index:-0}"
}

sha256_of() {
    sha256sum "$1" | awk '{print $1}'
}

count_packets() {
    tcpdump -r "$1" --count 2>/dev/null | awk '/packets?$/ {print $1; exit}'
}

# Upload one closed file, record it and remove it, waiting and uploading no later than $2 (a $SECONDS
# value). The file itself is the lock: the hook and the final sweep may both reach for it, and only one
# of them uploads it. Returns 1 if the file stays on disk.
deliver() {
    local file=$1 give_up_at=$2 fd key bytes sha packets
    [[ -e $file ]] || return 0  # already delivered and removed
    exec {fd}<"$file" || return 0
    if ! flock -x -w "$(seconds_left "$give_up_at")" "$fd"; then
        exec {fd}<&-
        warn "gave up waiting for another upload of $file"
        return 1
    fi
    if [[ ! -e $file ]]; then
        exec {fd}<&-
        return 0
    fi
    key=$(key_for "$file")
    bytes=$(stat -c %s "$file")
    sha=$(sha256_of "$file")
    packets=$(count_packets "$file")
    # The SHA-256 in the metadata and the manifest lets anyone check the whole file later.
    if s3_post "$key" "$file" "$(seconds_left "$give_up_at")" application/vnd.tcpdump.pcap "$sha" "${packets:-0}"; then
        printf '%s\t%s\t%s\t%s\n' "$key" "$bytes" "$sha" "${packets:-0}" >>"$delivered_list"
        rm -f -- "$file"
        log "delivered s3://$bucket/$key ($bytes bytes, ${packets:-0} packets)"
        exec {fd}<&-
        return 0
    fi
    warn "upload of $file to s3://$bucket/$key failed; kept on disk"
    exec {fd}<&-
    return 1
}

# POST $2 to s3://$bucket/$1 with the upload grant, within $3 seconds; $4 is the Content-Type, $5 and $6
# the sha256 and packets metadata. The grant is read for every upload: the workflow renews it during long
# captures. Every field is sent every time, because the grant's policy names each one.
s3_post() {
    local key=$1 file=$2 seconds=$3 line name value url="" form=()
    if [[ ! -r $grant_file ]]; then
        warn "no upload grant at $grant_file"
        return 1
    fi
    while IFS= read -r line || [[ -n $line ]]; do
        name=${line%%=*} value=${line#*=}
        case $name in
            url) url=$value ;;
            policy | x-amz-algorithm | x-amz-credential | x-amz-date | x-amz-security-token | x-amz-signature)
                if [[ ! $value =~ ^[A-Za-z0-9+/=_.:-]{1,4096}$ ]]; then
                    warn "upload grant: malformed $name"
                    return 1
                fi
                form+=(--form-string "$name=$value")
                ;;
            *)
                warn "upload grant: unexpected field"
                return 1
                ;;
        esac
    done <"$grant_file"
    if [[ ! $url =~ ^(https://[a-z0-9.-]{3,255}|http://127\.0\.0\.1)(:[0-9]{1,5})?/([a-z0-9.-]{3,63}/?)?$ ]]; then
        warn "upload grant: malformed url"
        return 1
    fi
    # --form-string: values go out verbatim (-F would read a value starting with @ or < as a file).
    # `file` must be the last field. S3 explains a refusal in the body, which goes to the log.
    timeout "$seconds" curl --silent --show-error --fail-with-body --proto =https,http --retry 3 \
        "${form[@]}" --form-string "key=$key" --form-string "Content-Type=$4" \
        --form-string "x-amz-meta-sha256=$5" --form-string "x-amz-meta-packets=$6" \
        --form "file=@$file" "$url" >>"$log_file" 2>&1
}

# Seconds from now until $1 (a $SECONDS value), at most one upload's worth, at least 1.
seconds_left() {
    local left=$(($1 - SECONDS))
    ((left > upload_timeout)) && left=$upload_timeout
    ((left < 1)) && left=1
    echo "$left"
}

# tcpdump's -z hook runs this for every file it closes on rotation (never for the last one).
run_hook() {
    # timeout signals its whole process group when the window ends; an upload in flight must finish.
    trap '' INT TERM HUP
    exec >/dev/null 2>>"$log_file"  # tcpdump's own output is read for its statistics: keep out of it
    deliver "$deliver_file" $((SECONDS + 2 * upload_timeout))
}

# --- the capture ----------------------------------------------------------------------------------------

request_stop() {
    [[ -n $stop_reason ]] && return
    stop_reason=$1
    stop_due=$((SECONDS + DRAIN_SECONDS + 1))  # SECONDS counts whole seconds: at least DRAIN_SECONDS from now
    log "stop requested ($1)"
}

# Called every second while tcpdump runs.
stop_when_due() {
    if [[ -n $stop_due ]] && ((SECONDS >= stop_due)); then
        stop_due=""
        kill -INT "$timeout_pid"  # timeout passes it on to tcpdump, which closes its file and exits
    fi
}

fail() {
    capture_failed=1
    errors+=("$*")
    warn "$*"
}

preflight() {
    local tool avail_mb
    for tool in "${REQUIRED_TOOLS[@]}"; do
        command -v "$tool" >/dev/null || { fail "required tool missing: $tool"; return 1; }
    done
    # Mirrored traffic arrives on the primary ENI: ens5 on Amazon Linux 2023, found by its default route.
    interface=$(ip -4 route show default 2>/dev/null | awk '{for (i = 1; i < NF; i++) if ($i == "dev") {print $(i + 1); exit}}')
    if [[ ! $interface =~ ^[A-Za-z0-9_.:-]{1,15}$ ]]; then
        interface=""
        fail "no IPv4 default route: cannot tell which interface receives the mirrored traffic"
        return 1
    fi
    avail_mb=$(free_megabytes)
    if ((avail_mb < reserve_mb + rotate_megabytes)); then
        stop_reason=disk
        errors+=("only ${avail_mb} MB free in $work; need $((reserve_mb + rotate_megabytes)) MB to start")
        warn "${errors[-1]}"
        return 1
    fi
}

free_megabytes() {
    df -Pk "$work" | awk 'NR == 2 {print int($4 / 1024)}'
}

write_hook() {
    hook="$work/on-close"
    {
        printf '#!/bin/bash\n'
        printf 'exec /bin/bash %q --deliver "$1"' "$SCRIPT_PATH"
        printf ' %q' "${SCRIPT_ARGS[@]}"
        printf '\n'
    } >"$hook"
    chmod 0700 "$hook"
}

wait_listening() {
    local waited=0
    until grep -q '^tcpdump: listening on' "$tcpdump_log" 2>/dev/null; do
        kill -0 "$timeout_pid" 2>/dev/null || return 1
        ((waited++ < LISTEN_WAIT_SECONDS * 10)) || return 1
        sleep 0.1
    done
}

capture() {
    local rc
    bpf_filter="udp dst port $VXLAN_PORT and udp[12:4] >> 8 = $vni"
    write_hook
    log "capturing $interface for ${duration}s: $bpf_filter"
    # -Z root: the post-rotate hook must read the files and reach S3 as root (tcpdump would drop to its
    # own user). -G starts a new file every rotate_seconds even on a quiet link, so a lost collector
    # loses at most that much; -C bounds each file's size. No -W ring: a ring would overwrite files.
    timeout --signal=INT --kill-after="$STOP_GRACE_SECONDS" $((duration + DRAIN_SECONDS)) \
        tcpdump -i "$interface" -n -Z root -B "$SOCKET_BUFFER_KIB" -s "$snaplen" \
        -C "$rotate_megabytes" -G "$rotate_seconds" -z "$hook" -w "$work/%Y%m%dT%H%M%SZ.pcap" \
        "$bpf_filter" >"$tcpdump_log" 2>&1 &
    timeout_pid=$!
    if wait_listening; then
        log "tcpdump listening on $interface"
    fi
    while kill -0 "$timeout_pid" 2>/dev/null; do
        if [[ -z $stop_reason ]] && (($(free_megabytes) < reserve_mb)); then
            errors+=("disk guard: less than ${reserve_mb} MB free in $work")
            warn "${errors[-1]}"
            request_stop disk
        fi
        stop_when_due
        sleep 1
    done
    wait "$timeout_pid"
    rc=$?
    timeout_pid=""
    read_tcpdump_stats
    case $rc in
        124) log "capture window of ${duration}s ended" ;;
        0) [[ -n $stop_reason ]] || stop_reason=signal ;;  # stopped before the window: by us, or tcpdump was signalled
        *) fail "tcpdump exited with status $rc: $(grep -v '^tcpdump: listening on' "$tcpdump_log" | tail -n 3 | tr '\n' ' ')" ;;
    esac
}

read_tcpdump_stats() {
    packets_captured=$(awk '/ packets captured$/ {print $1}' "$tcpdump_log")
    packets_received=$(awk '/ packets received by filter$/ {print $1}' "$tcpdump_log")
    packets_dropped=$(awk '/ packets dropped by kernel$/ {print $1}' "$tcpdump_log")
}

# --- the end: deliver what is left, then the manifest ---------------------------------------------------

deliver_remaining() {
    local file give_up_at=$((deadline - MANIFEST_SECONDS))
    shopt -s nullglob
    for file in "$work"/*.pcap*; do
        if ((SECONDS >= give_up_at)); then
            warn "finish budget spent: $file not delivered"
            continue
        fi
        deliver "$file" "$give_up_at" || true
    done
    not_delivered=()
    for file in "$work"/*.pcap*; do
        not_delivered+=("$(key_for "$file")")
    done
    shopt -u nullglob
}

json_string() {
    local s=$1
    s=${s//\\/\\\\}
    s=${s//\"/\\\"}
    s=${s//$'\n'/\\n}
    s=${s//$'\t'/\\t}
    printf '"%s"' "$(printf '%s' "$s" | tr -cd '\040-\176')"
}

json_string_or_null() {
    if [[ -n $1 ]]; then json_string "$1"; else printf 'null'; fi
}

decide_outcome() {
    if ((capture_failed)); then
        status=failed exit_code=$EXIT_CAPTURE_FAILED
    elif ((${#not_delivered[@]})); then
        status=failed exit_code=$EXIT_UPLOAD_FAILED
        errors+=("not delivered (left in $work): ${not_delivered[*]}")
    elif [[ $stop_reason == disk ]]; then
        status=disk_limit exit_code=$EXIT_DISK_LIMIT
    elif [[ $stop_reason == signal ]]; then
        status=stopped_early exit_code=$EXIT_STOPPED_EARLY
    else
        status=complete exit_code=$EXIT_COMPLETE
    fi
}

write_manifest() {
    local key bytes sha packets sep="" files_sum=0 error="" i
    if [[ -z $packets_captured ]]; then
        [[ $status == failed ]] || errors+=("tcpdump printed no statistics")
    fi
    {
        printf '{\n  "capture_id": %s,\n  "status": %s,\n' "$(json_string "$capture_id")" "$(json_string "$status")"
        printf '  "interface": %s,\n  "vni": %s,\n' "$(json_string_or_null "$interface")" "$vni"
        printf '  "started_at": %s,\n  "ended_at": %s,\n' "$(json_string "$started_at")" "$(json_string "$(now)")"
        printf '  "files": ['
        while IFS=$'\t' read -r key bytes sha packets; do
            printf '%s\n    {"key": %s, "bytes": %s, "sha256": %s, "packets": %s}' \
                "$sep" "$(json_string "$key")" "$bytes" "$(json_string "$sha")" "$packets"
            sep=","
            files_sum=$((files_sum + packets))
        done < <(sort -u "$delivered_list")
        printf '\n  ],\n'
        printf '  "packets_captured": %s,\n' "${packets_captured:-$files_sum}"
        printf '  "packets_received_by_filter": %s,\n' "${packets_received:-null}"
        printf '  "packets_dropped_by_kernel": %s,\n' "${packets_dropped:-0}"
        printf '  "bpf_filter": %s,\n' "$(json_string_or_null "$bpf_filter")"
        printf '  "not_delivered": ['
        sep=""
        for i in "${not_delivered[@]}"; do
            printf '%s%s' "$sep" "$(json_string "$i")"
            sep=", "
        done
        printf '],\n'
        printf '  "exit_code": %s,\n' "$exit_code"
        if ((${#errors[@]})); then
            error=$(printf '%s; ' "${errors[@]}")
            error=${error%; }
        fi
        printf '  "error": %s\n}\n' "$(json_string_or_null "$error")"
    } >"$work/manifest.json"
}

upload_manifest() {
    local key="${key_prefix}manifest.json"
    if s3_post "$key" "$work/manifest.json" "$MANIFEST_SECONDS" application/json "$(sha256_of "$work/manifest.json")" 0; then
        log "manifest: s3://$bucket/$key"
        return 0
    fi
    warn "manifest upload failed; it is at $work/manifest.json"
    return 1
}

# The whole log, for when SSM's copy of the output (the first 24,000 characters) is not enough. Best
# effort, after the manifest: the workflow does not wait for it.
upload_log() {
    s3_post "${key_prefix}capture.log" "$log_file" "$MANIFEST_SECONDS" text/plain "$(sha256_of "$log_file")" 0 ||
        warn "log upload failed"
}

finish() {
    # Delivering is all that is left: a stop request now would only cut it short.
    trap '' INT TERM HUP
    deadline=$((SECONDS + finish_seconds))
    deliver_remaining
    decide_outcome
    write_manifest
    upload_manifest || exit_code=$EXIT_MANIFEST_FAILED
    log "capture $capture_id: $status, $(wc -l <"$delivered_list") file(s), ${packets_captured:-?} packets," \
        "${packets_dropped:-?} dropped by kernel; exit $exit_code"
    upload_log
    rm -f -- "$work/capture.pid"
    exit "$exit_code"
}

main() {
    parse_args "$@"
    log_file="$work/capture.log"
    delivered_list="$work/delivered.tsv"
    if [[ -n $deliver_file ]]; then
        run_hook
        exit
    fi
    if [[ -e $work ]]; then
        die_usage "$work already exists: capture $capture_id has run on this host before"
    fi
    umask 077
    mkdir -p "$work" || die_usage "cannot create $work"
    : >"$delivered_list"
    tcpdump_log="$work/tcpdump.log"
    reserve_mb=$((RESERVE_FLOOR_MB + 2 * rotate_megabytes))  # room for the open file and one being uploaded
    started_at=$(now)
    stop_reason="" stop_due="" timeout_pid="" interface="" bpf_filter="" capture_failed=0 errors=()
    packets_captured="" packets_received="" packets_dropped=""
    echo "$$" >"$work/capture.pid"
    trap 'request_stop signal' INT TERM HUP
    if [[ -z $stop_reason ]] && preflight; then
        capture
    fi
    finish
}

main "$@"
