# Headless baresip helpers (sourced by run.sh). See ../../../shared INTEROP-NOTES: baresip 1.0
# has no null audio driver, so it plays a generated 8 kHz WAV (aufile) into aubridge.

# baresip_config DIR USER SIPPORT CTRLPORT: a config dir for one instance.
baresip_config() {
  local dir=$1 user=$2 sip_port=$3 ctrl_port=$4
  mkdir -p "$dir"
  python3 - "$dir/tone.wav" <<'PY'
import math, struct, sys, wave
w = wave.open(sys.argv[1], "wb"); w.setnchannels(1); w.setsampwidth(2); w.setframerate(8000)
w.writeframes(b"".join(struct.pack("<h", int(8000 * math.sin(2 * math.pi * 440 * i / 8000))) for i in range(8000 * 5)))
w.close()
PY
  cat > "$dir/config" <<CFG
poll_method epoll
sip_listen 127.0.0.1:$sip_port
net_interface 127.0.0.1
dns_server 127.0.0.1:53
audio_player aubridge,nil
audio_source aufile,$dir/tone.wav
audio_alert aubridge,nil
module_path /usr/lib/baresip/modules
module g711.so
module aufile.so
module aubridge.so
module_app account.so
module_app ctrl_tcp.so
ctrl_tcp_listen 127.0.0.1:$ctrl_port
rtp_stats yes
CFG
  printf '<sip:%s@127.0.0.1:%s;transport=udp>;auth_pass=pw-%s-Xk9q;regint=600;answermode=auto\n' \
    "$user" "$PORT" "$user" > "$dir/accounts"
}

# baresip_register USER: baresip registers; the daemon must have logged the binding and
# baresip must have seen the 200.
baresip_register() {
  local user=$1 dir=$WORK/baresip-$1
  local sp cp
  sp=$(free_port); cp=$(free_port)
  baresip_config "$dir" "$user" "$sp" "$cp"
  timeout 20 baresip -f "$dir" -t 4 >"$dir/out.log" 2>&1
  grep -q "200 OK" "$dir/out.log" || { echo "     baresip output:"; tail -20 "$dir/out.log"; return 1; }
  grep -q "registered aor=$user@" "$WORK/daemon.log" || { echo "     daemon did not log the binding"; return 1; }
}

# baresip_call: alice and bob register, alice calls bob, RTP flows both ways (CALL_RTPESTAB on
# both), alice hangs up; the daemon's CDR shows NORMAL_CLEARING for alice → bob.
baresip_call() {
  local a=$WORK/bcall-alice b=$WORK/bcall-bob
  local asp acp bsp bcp
  asp=$(free_port); acp=$(free_port); bsp=$(free_port); bcp=$(free_port)
  baresip_config "$a" alice "$asp" "$acp"
  baresip_config "$b" bob "$bsp" "$bcp"
  echo "module_app menu.so" >> "$a/config"; echo "module_app menu.so" >> "$b/config"
  timeout 40 baresip -f "$b" >"$b/out.log" 2>&1 &
  local bpid=$!
  timeout 40 baresip -f "$a" >"$a/out.log" 2>&1 &
  local apid=$!
  local rc=0
  timeout 45 python3 "$HERE/baresip_call.py" "$acp" "$bcp" "$PORT" || rc=1
  kill "$apid" "$bpid" 2>/dev/null; wait "$apid" "$bpid" 2>/dev/null
  if [ $rc -ne 0 ]; then tail -15 "$a/out.log" "$b/out.log"; return 1; fi
  sleep 0.5
  grep '"caller":{"user":"alice"' "$WORK/cdr.jsonl" | grep -q '"hangup_cause":"NORMAL_CLEARING"' \
    || { echo "     no NORMAL_CLEARING CDR for alice"; return 1; }
}
