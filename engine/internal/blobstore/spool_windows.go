package blobstore

// deleteOnClose is FILE_FLAG_DELETE_ON_CLOSE, which os.OpenFile passes on
// to CreateFile: Windows removes the file when its last handle closes, the
// process's death included (an open file cannot be removed there).
const deleteOnClose = 0x04000000
