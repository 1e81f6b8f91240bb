use super::*;

#[test]
fn all_lists_every_variant_in_order_with_distinct_labels() {
    fn check<T: Copy + PartialEq + std::fmt::Debug>(
        all: &[T],
        index: fn(T) -> usize,
        label: fn(T) -> &'static str,
    ) {
        for (i, v) in all.iter().enumerate() {
            assert_eq!(index(*v), i, "{v:?}");
        }
        let mut labels: Vec<_> = all.iter().map(|v| label(*v)).collect();
        labels.sort_unstable();
        labels.dedup();
        assert_eq!(labels.len(), all.len(), "labels are distinct");
    }
    check(Outcome::ALL, |v| v as usize, Outcome::as_str);
    check(RejectReason::ALL, |v| v as usize, RejectReason::as_str);
    check(FailReason::ALL, |v| v as usize, FailReason::as_str);
    check(HttpErrorKind::ALL, |v| v as usize, HttpErrorKind::as_str);
    check(RecordWriter::ALL, |v| v as usize, RecordWriter::as_str);
}
