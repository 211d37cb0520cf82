package yuv

import (
	"testing"

	"golang.org/x/sys/unix"
)

// TestKernelStaysInBounds: the kernels read only their pixels' bytes. A
// picture whose last row ends where an unreadable page begins converts
// without a fault at every level (the AVX-512 kernel loads 48 bytes of a
// 64-byte register under a mask).
func TestKernelStaysInBounds(t *testing.T) {
	page := unix.Getpagesize()
	mem, err := unix.Mmap(-1, 0, 2*page, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANON)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = unix.Munmap(mem) }()
	if err := unix.Mprotect(mem[page:], unix.PROT_NONE); err != nil {
		t.Fatal(err)
	}
	for l := levelGo; l <= best; l++ {
		for _, w := range []int{32, 64, 96, 112} {
			const h = 2
			src := mem[page-3*w*h : page]
			y, u, v := make([]byte, w*h), make([]byte, w/2), make([]byte, w/2)
			For(true).convert(src, 3*w, w, h, y, w, u, w/2, v, w/2, l)
		}
	}
}
