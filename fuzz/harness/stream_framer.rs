//! TCP framer: arbitrary bytes pushed in arbitrary chunks. Never panics; what it buffers
//! stays within the limit; every frame is exactly the octets of the stream at that point;
//! chunking never changes the frames; every message frame goes through `parse_framed`.
//!
//! Input: first byte seeds the chunk sizes, the rest is the stream.

use bytes::Bytes;
use ferroswitch::sip::{parse_framed, Frame, FrameError, StreamFramer};

/// Small enough for the fuzzer to reach the size limit often.
const MAX: usize = 2048;

/// Pops until the framer wants more; checks each frame against the stream at `*offset`.
fn drain(
    f: &mut StreamFramer,
    stream: &[u8],
    offset: &mut usize,
    frames: &mut Vec<Frame>,
) -> Result<(), FrameError> {
    loop {
        let Some(frame) = f.pop()? else {
            assert!(f.buffered() <= MAX, "buffered {} > {MAX}", f.buffered());
            return Ok(());
        };
        let rest = &stream[*offset..];
        let used = match &frame {
            Frame::Message(m) => {
                assert!(
                    rest.starts_with(m),
                    "message frame is not the stream's next octets"
                );
                assert!(m.len() <= MAX);
                let _ = parse_framed(Bytes::clone(m));
                m.len()
            }
            Frame::Ping => {
                assert!(rest.starts_with(b"\r\n\r\n"));
                4
            }
            Frame::Pong if rest.starts_with(b"\r\n") => 2,
            Frame::Pong => {
                assert!(rest.starts_with(b"\n"));
                1
            }
        };
        *offset += used;
        frames.push(frame);
    }
}

/// Frames of `stream` pushed in the chunk sizes `sizes` (cycled), and the error if one came.
fn run(stream: &[u8], sizes: &[usize]) -> (Vec<Frame>, Option<FrameError>) {
    let mut f = StreamFramer::new(MAX);
    let (mut pushed, mut offset, mut frames) = (0, 0, Vec::new());
    let mut i = 0;
    while pushed < stream.len() {
        let n = sizes[i % sizes.len()].min(stream.len() - pushed);
        i += 1;
        f.push(&stream[pushed..pushed + n]);
        pushed += n;
        if let Err(e) = drain(&mut f, stream, &mut offset, &mut frames) {
            return (frames, Some(e));
        }
        assert_eq!(offset + f.buffered(), pushed, "octets lost or invented");
    }
    (frames, None)
}

/// The check the fuzzer runs on every input; panics on a violation.
pub fn check(data: &[u8]) {
    let Some((&seed, stream)) = data.split_first() else {
        return;
    };
    // Chunk sizes from the seed: 1..=16 octets, or bigger runs.
    let sizes: Vec<usize> = (0..4)
        .map(|k| match (seed >> (2 * k)) & 3 {
            0 => 1,
            1 => 7,
            2 => 16 + usize::from(seed),
            _ => 4096,
        })
        .collect();
    let (frames, err) = run(stream, &sizes);
    let (whole, whole_err) = run(stream, &[usize::MAX]);
    assert_eq!(frames, whole, "chunking changed the frames");
    // Which error may differ (a long head is TooLarge before its bad Content-Length is
    // seen), whether the stream fails may not.
    assert_eq!(
        err.is_some(),
        whole_err.is_some(),
        "{err:?} vs {whole_err:?}"
    );
}
