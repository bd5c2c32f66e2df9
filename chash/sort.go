package chash

// sortPoints sorts pts by position with a stable least-significant-digit
// radix sort, a byte a pass. Stability keeps points of equal position in
// the order they came in, which placePoints makes the order of owners.
// A comparison sort of a thousand servers' points takes ten times longer.
func sortPoints(pts []point) {
	if len(pts) == 0 {
		return
	}
	tmp := make([]point, len(pts))
	src, dst := pts, tmp
	for shift := uint(0); shift < 64; shift += 8 {
		var counts [256]int
		for _, p := range src {
			counts[byte(p.hash>>shift)]++
		}
		if counts[byte(src[0].hash>>shift)] == len(src) {
			continue // every point has this digit: the pass would not move any
		}
		offset := 0
		for d, c := range counts {
			counts[d] = offset
			offset += c
		}
		for _, p := range src {
			d := byte(p.hash >> shift)
			dst[counts[d]] = p
			counts[d]++
		}
		src, dst = dst, src
	}
	copy(pts, src)
}
