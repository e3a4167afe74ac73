//go:build !wasip1

package pdk

import "unsafe"

// Host stand-ins: outside the sandbox every host call fails with notInSandbox.

func hostLog(int32, unsafe.Pointer, uint32) int32                { return notInSandbox }
func hostDocSize(int32) int64                                    { return notInSandbox }
func hostDocName(int32, unsafe.Pointer, uint32) int32            { return notInSandbox }
func hostDocContentType(int32, unsafe.Pointer, uint32) int32     { return notInSandbox }
func hostContentRead(int32, int64, unsafe.Pointer, uint32) int32 { return notInSandbox }
func hostMetadataKeys(int32, unsafe.Pointer, uint32) int32       { return notInSandbox }
func hostSetStatus(int32, unsafe.Pointer, uint32) int32          { return notInSandbox }
func hostDerivedMetadataSet(unsafe.Pointer, uint32, unsafe.Pointer, uint32, unsafe.Pointer, uint32) int32 {
	return notInSandbox
}
func hostParamGet(unsafe.Pointer, uint32, unsafe.Pointer, uint32) int32 {
	return notInSandbox
}
func hostMetadataGet(int32, unsafe.Pointer, uint32, unsafe.Pointer, uint32) int32 {
	return notInSandbox
}
func hostMetadataSet(unsafe.Pointer, uint32, unsafe.Pointer, uint32) int32 {
	return notInSandbox
}
func hostEmit(unsafe.Pointer, uint32, unsafe.Pointer, uint32, unsafe.Pointer, uint32) int32 {
	return notInSandbox
}
func hostLookupName(unsafe.Pointer, uint32, unsafe.Pointer, uint32) int32 {
	return notInSandbox
}
func hostLookupMetadata(unsafe.Pointer, uint32, unsafe.Pointer, uint32, unsafe.Pointer, uint32) int32 {
	return notInSandbox
}
