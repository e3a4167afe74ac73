use std::collections::HashMap;

#[link(wasm_import_module = "docex")]
extern "C" {
    fn doc_size(h: i32) -> i64;
    fn content_read(h: i32, off: i64, buf: *mut u8, len: i32) -> i32;
    fn metadata_set(k: *const u8, kl: i32, v: *const u8, vl: i32) -> i32;
}

/// Counts the words of the input and records the most frequent one
/// (ties: the smallest) as metadata top_word, and the count as top_count.
#[no_mangle]
pub extern "C" fn docex_run() -> i32 {
    let size = unsafe { doc_size(0) } as usize;
    let mut buf = vec![0u8; size];
    let mut off = 0usize;
    while off < size {
        let n = unsafe { content_read(0, off as i64, buf.as_mut_ptr().add(off), (size - off) as i32) };
        if n <= 0 { break; }
        off += n as usize;
    }
    let text = String::from_utf8_lossy(&buf[..off]);
    let mut counts: HashMap<String, u64> = HashMap::new();
    for w in text.split_whitespace() {
        *counts.entry(w.to_lowercase()).or_insert(0) += 1;
    }
    let mut best: Vec<(&String, &u64)> = counts.iter().collect();
    best.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    let (w, c) = match best.first() { Some(x) => (x.0.clone(), *x.1), None => (String::new(), 0) };
    let set = |k: &str, v: String| unsafe { metadata_set(k.as_ptr(), k.len() as i32, v.as_ptr(), v.len() as i32) };
    if set("top_word", format!("s{}", w)) != 0 { return 1; }
    if set("top_count", format!("n{}", c)) != 0 { return 1; }
    0
}
