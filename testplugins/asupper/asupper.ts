@external("docex", "content_read")
declare function content_read(h: i32, off: i64, buf: usize, len: i32): i32;
@external("docex", "emit")
declare function emit(name: usize, nlen: i32, ct: usize, ctlen: i32, data: usize, dlen: i32): i32;
@external("docex", "doc_size")
declare function doc_size(h: i32): i64;

export function docex_run(): i32 {
  const size = <i32>doc_size(0);
  const buf = new ArrayBuffer(size);
  const p = changetype<usize>(buf);
  let off: i32 = 0;
  while (off < size) {
    const n = content_read(0, <i64>off, p + off, size - off);
    if (n <= 0) break;
    off += n;
  }
  for (let i = 0; i < off; i++) {
    const c = load<u8>(p + i);
    if (c >= 97 && c <= 122) store<u8>(p + i, c - 32);
  }
  const name = String.UTF8.encode("upper.txt");
  const ct = String.UTF8.encode("text/plain");
  return emit(changetype<usize>(name), name.byteLength, changetype<usize>(ct), ct.byteLength, p, off);
}
