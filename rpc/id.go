package rpc

// FNV-1a 64-bit parameters (http://www.isthe.com/chongo/tech/comp/fnv/).
const (
	fnvOffset64 = 14695981039346656037
	fnvPrime64  = 1099511628211
)

// ServiceID returns the wire id of the service called name: the FNV-1a
// 64-bit hash of the name's UTF-8 bytes. It never changes between
// versions, so clients and servers built apart agree on it.
func ServiceID(name string) uint64 { return fnv1a(name) }

// MethodID returns the wire id of the method called name within its
// service: the FNV-1a 64-bit hash of the method name alone (the service
// id already tells services apart, as in the Rust bifrost).
func MethodID(name string) uint64 { return fnv1a(name) }

// fnv1a hashes s without allocating; hash/fnv would need a []byte copy.
func fnv1a(s string) uint64 {
	h := uint64(fnvOffset64)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= fnvPrime64
	}
	return h
}
