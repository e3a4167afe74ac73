package sandbox

// pageSize is the size of one WebAssembly memory page in bytes.
const pageSize = 65536
