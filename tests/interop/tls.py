#!/usr/bin/env python3
"""linphonec over TLS through the daemon (issue 14).

usage: tls.py MODE SIP_PORT TLS_PORT WORK LINPHONE_SIP_PORT CA_FILE [CTRL_BOB]
  call: linphonec (alice) trusting CA_FILE registers over TLS, calls bob (baresip on UDP,
      auto-answer, driven over ctrl_tcp), bob answers, alice hangs up.
  untrusted: linphonec trusting CA_FILE (not the daemon's CA) tries to register over TLS and
      must not get registered.
linphonec is driven over stdin (transfer.Linphone); every wait is bounded."""
import os, sys, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from baresip_call import Ctrl  # noqa: E402
from transfer import Linphone, step  # noqa: E402


def tls_linphone(name, work, lp_port, ca):
    # sip_tls_port=-1: a random local port; the server certificate is checked against CA_FILE
    # (and its name against the host we dial, 127.0.0.1).
    extra = f"root_ca={ca}\nverify_server_certs=1\nverify_server_cn=1\n"
    return Linphone(name, os.path.join(work, f"lp-{name}"), lp_port, autoanswer=False,
                    sip_extra=extra)


def register(lp, user, tls_port, expect=True, wait=15):
    lp.send("soundcard use files")
    lp.send(f"register sip:{user}@127.0.0.1 sip:127.0.0.1:{tls_port};transport=tls pw-{user}-Xk9q")
    end = time.time() + wait
    while time.time() < end:
        mark = lp.mark()
        lp.send("status register")
        if lp.wait(r"^(linphonec> )?registered,", 0.5, mark) is not None:
            return True
    return False


def call(sip_port, tls_port, work, lp_port, ca, ctrl_bob):
    bob = Ctrl("bob", int(ctrl_bob))
    lp = tls_linphone("alice", work, lp_port, ca)
    try:
        step(register(lp, "alice", tls_port), "linphonec registers as alice over TLS")
        bob.send("reginfo")
        time.sleep(1.5)
        mark = lp.mark()
        lp.send(f"call sip:bob@127.0.0.1:{tls_port};transport=tls")
        step(bob.wait("CALL_ESTABLISHED", 15), "bob (baresip, UDP) answers alice (TLS)")
        step(lp.wait(r"(?i)connected", 10, mark) is not None, "alice (linphonec) is connected")
        time.sleep(1)
        lp.send("terminate")
        step(bob.wait("CALL_CLOSED", 10), "alice hangs up, bob sees the call closed")
    finally:
        lp.close()


def untrusted(sip_port, tls_port, work, lp_port, ca):
    lp = tls_linphone("mallory", work, lp_port, ca)
    try:
        ok = register(lp, "alice", tls_port, wait=8)
        step(not ok, "linphonec that does not trust the CA is not registered")
    finally:
        lp.close()


def main():
    mode, sip_port, tls_port, work, lp_port, ca = sys.argv[1:7]
    sip_port, tls_port, lp_port = int(sip_port), int(tls_port), int(lp_port)
    if mode == "call":
        call(sip_port, tls_port, work, lp_port, ca, sys.argv[7])
    else:
        untrusted(sip_port, tls_port, work, lp_port, ca)
    return 0


if __name__ == "__main__":
    sys.exit(main())
