//! Merging hand-built files: time order over names, interleaving, bad files, the open-file cap.

use super::*;
use crate::capture::file::tests::{pcap, temp_dir};

/// A classic pcap whose frames are `(second, byte)`: the byte tells frames apart.
fn file(dir: &Path, name: &str, frames: &[(u32, u8)]) -> PathBuf {
    let data: Vec<[u8; 1]> = frames.iter().map(|(_, b)| [*b]).collect();
    let recs: Vec<(u32, u32, &[u8])> = frames
        .iter()
        .zip(&data)
        .map(|((t, _), d)| (*t, 0, &d[..]))
        .collect();
    let p = dir.join(name);
    std::fs::write(&p, pcap(1, false, false, &recs)).unwrap();
    p
}

/// Every step of the merge: frames as (second, byte), file ends as their names (and "!" when the
/// file ended with an error); and the most files open at once.
fn run(plan: &Plan) -> (Vec<String>, usize) {
    let mut m = Merge::new(plan, Arc::new(AtomicU64::new(0)));
    let mut steps = Vec::new();
    let mut most_open = 0;
    loop {
        most_open = most_open.max(m.open_files());
        match m.next() {
            Step::Frame(f) => steps.push(format!("{}:{}", f.ts.0 / 1_000_000_000, f.data[0])),
            Step::Ended(e) => steps.push(format!(
                "end {}{}",
                e.path.file_name().unwrap().to_string_lossy(),
                if e.error.is_some() { "!" } else { "" }
            )),
            Step::End => break,
        }
    }
    (steps, most_open)
}

#[test]
fn files_are_read_in_time_order_whatever_their_names_one_at_a_time() {
    let d = temp_dir("merge-order");
    let late = file(&d, "a-late.pcap", &[(300, 5), (301, 6)]);
    let early = file(&d, "b-early.pcap", &[(100, 1), (101, 2)]);
    let middle = file(&d, "c-middle.pcap", &[(200, 3), (201, 4)]);
    let plan = plan(&[late, early, middle]);
    let (steps, most_open) = run(&plan);
    assert_eq!(
        steps,
        [
            "100:1",
            "101:2",
            "end b-early.pcap",
            "200:3",
            "201:4",
            "end c-middle.pcap",
            "300:5",
            "301:6",
            "end a-late.pcap"
        ]
    );
    assert_eq!(most_open, 1, "files apart in time are never open together");
}

#[test]
fn overlapping_files_interleave_by_time_and_ties_keep_the_given_order() {
    let d = temp_dir("merge-overlap");
    let a = file(&d, "a.pcap", &[(10, 1), (12, 2), (14, 3), (20, 4)]);
    let b = file(&d, "b.pcap", &[(11, 5), (12, 6), (13, 7)]);
    let c = file(&d, "c.pcap", &[(30, 8)]);
    let (steps, most_open) = run(&plan(&[a, b, c]));
    assert_eq!(
        steps,
        [
            "10:1",
            "11:5",
            "12:2",
            "12:6",
            "13:7",
            "end b.pcap",
            "14:3",
            "20:4",
            "end a.pcap",
            "30:8",
            "end c.pcap"
        ]
    );
    assert_eq!(most_open, 2);
}

#[test]
fn bad_files_end_with_their_error_and_the_others_go_on() {
    let d = temp_dir("merge-bad");
    let good = file(&d, "good.pcap", &[(10, 1), (11, 2)]);
    let cut = file(&d, "cut.pcap", &[(5, 3), (6, 4)]);
    let bytes = std::fs::read(&cut).unwrap();
    std::fs::write(&cut, &bytes[..bytes.len() - 1]).unwrap();
    let junk = d.join("junk.pcap");
    std::fs::write(&junk, b"not a capture at all").unwrap();
    let missing = d.join("missing.pcap");
    let empty = file(&d, "empty.pcap", &[]);
    let (steps, _) = run(&plan(&[good, cut, junk, missing, empty]));
    assert_eq!(
        steps,
        [
            "end junk.pcap!",
            "end missing.pcap!",
            "end empty.pcap",
            "5:3",
            "end cut.pcap!",
            "10:1",
            "11:2",
            "end good.pcap"
        ]
    );
}

#[test]
fn open_files_stay_under_the_cap_and_every_frame_comes_out() {
    let d = temp_dir("merge-cap");
    let n = MAX_MERGE_OPEN_FILES + 6;
    let files: Vec<PathBuf> = (0..n)
        .map(|i| file(&d, &format!("f{i:03}.pcap"), &[(1, 1), (2 + i as u32, 2)]))
        .collect();
    let plan = plan(&files);
    let mut m = Merge::new(&plan, Arc::new(AtomicU64::new(0)));
    let (mut frames, mut ends, mut most_open) = (0, 0, 0);
    loop {
        most_open = most_open.max(m.open_files());
        match m.next() {
            Step::Frame(_) => frames += 1,
            Step::Ended(e) => {
                assert!(e.error.is_none());
                ends += 1;
            }
            Step::End => break,
        }
    }
    assert_eq!((frames, ends), (2 * n, n));
    assert_eq!(most_open, MAX_MERGE_OPEN_FILES);
    assert_eq!(m.deferred_files(), 6, "the files beyond the cap came late");
}
