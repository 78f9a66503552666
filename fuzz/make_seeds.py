#!/usr/bin/env python3
"""Writes the fuzz seed corpora from tests/data into fuzz/corpus/<target>/.

The committed corpora started from these seeds and were grown by fuzzing, then minimised
with `cargo fuzz cmin`. Rerun this to start afresh (existing files are kept).
"""
import hashlib
import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"
CORPUS = ROOT / "fuzz" / "corpus"
SEP = b"\n\x00\x00\n"  # the engine target's chunk separator


def write(target, data):
    d = CORPUS / target
    d.mkdir(parents=True, exist_ok=True)
    (d / ("seed-" + hashlib.sha1(data).hexdigest()[:16])).write_bytes(data)


def split_stream(data):
    """Content-Length framing, as the stream corpora README describes."""
    out, pos = [], 0
    while pos < len(data):
        while data[pos:pos + 2] == b"\r\n":
            pos += 2
        end = data.find(b"\r\n\r\n", pos)
        if end < 0:
            break
        head = data[pos:end + 4]
        m = re.search(rb"(?im)^(?:content-length|l)[ \t]*:[ \t]*(\d+)", head)
        n = int(m.group(1)) if m else 0
        out.append(data[pos:end + 4 + n])
        pos = end + 4 + n
    return out


def messages():
    for p in sorted((DATA / "rfc4475").glob("*.dat")) + sorted((DATA / "rfc5118").glob("*.dat")):
        yield p.read_bytes()
    for p in sorted((DATA / "trace").glob("*.sip")):
        yield p.read_bytes()
    sdp = (DATA / "sdp" / "xlite-offer-594.sdp").read_bytes()
    for p in sorted((DATA / "trace").glob("*.headers")):
        yield p.read_bytes() + sdp


def main():
    msgs = list(messages())
    streams = [p.read_bytes() for p in sorted((DATA / "streams").glob("*.txt"))]
    stream_msgs = [m for s in streams for m in split_stream(s)]

    for m in msgs + stream_msgs[::7]:
        write("parse_message", m)

    for i, m in enumerate(msgs):
        write("stream_framer", bytes([i % 256]) + m)
    for s in streams:
        parts = split_stream(s)
        for i in range(0, min(len(parts), 60), 4):
            chunk = b"\r\n\r\n".join(parts[i:i + 4]) + b"\r\n"
            write("stream_framer", bytes([(i * 37) % 256]) + chunk)

    headers = set()
    for m in msgs:
        for line in m.split(b"\n"):
            if re.match(rb"(?i)^(www-authenticate|authorization|proxy-authenticate|proxy-authorization)\s*:", line):
                headers.add(line.split(b":", 1)[1].strip())
    headers |= {
        b'Digest realm="http-auth@example.org", qop="auth, auth-int", algorithm=SHA-256, '
        b'nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"',
        b'Digest realm="api@example.org", qop=auth, algorithm=SHA-512-256, nonce="5TsQWLVdgBdmrQ0XsxbDODV+57QdFR34I9HAbC/RVvkK", '
        b'opaque="HRPCssKJSGjCrkzDg8OhwpzCiGPChXYjwrI2QmXDnsOS", charset=UTF-8, userhash=true',
        b"Digest username*=UTF-8''J%C3%A4s%C3%B8n%20Doe, realm=\"api@example.org\", uri=\"/doe.json\", "
        b'algorithm=SHA-512-256, nonce="x", nc=00000001, cnonce="y", qop=auth, response="ae66e67d", opaque="z", userhash=false',
        b'Digest realm="a", nonce="b", stale=TRUE, domain="sip:a sip:b"',
        b'Basic realm="x", Digest realm="y", nonce="z", algorithm=MD5-sess',
    }
    for h in sorted(headers):
        write("digest_header", h)

    register = (DATA / "trace" / "01-alice-register-noauth.sip").read_bytes()
    register2 = register.replace(b"CSeq: 1 REGISTER", b"CSeq: 2 REGISTER")
    invite = (DATA / "trace" / "06-bob-invite-noauth.headers").read_bytes() + (
        DATA / "sdp" / "xlite-offer-594.sdp").read_bytes()
    ack = (DATA / "trace" / "08-bob-ack-407.sip").read_bytes()
    for i, m in enumerate(msgs):
        write("engine", bytes([(i % 4) & 0b11]) + m)
    # Flows: register, answered challenge (right and wrong password), retransmissions, time.
    write("engine", b"\x00" + register + SEP + b"\x40" + register2)
    write("engine", b"\x00" + register + SEP + b"\xc0" + register2 + SEP + b"\x5c" + register2)
    write("engine", b"\x02" + register + SEP + b"\x42" + register2 + SEP + b"\x3e" + register)
    write("engine", b"\x01" + invite + SEP + b"\x01" + ack + SEP + b"\x41" + invite)
    write("engine", b"\x00" + register + SEP + b"\x40" + register2 + SEP + b"\x01" + invite
          + SEP + b"\x41" + invite.replace(b"CSeq: 1 ", b"CSeq: 2 "))


if __name__ == "__main__":
    main()
