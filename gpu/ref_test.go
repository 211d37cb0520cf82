package gpu

// Pure-Go reference of the two colour conversions in kernels/kernels.cu:
// BT.709, limited range, the same fixed-point integers. The cuda tests
// compare kernel output with these functions; ref_swscale_test.go checks
// these functions against FFmpeg's swscale, so the reference is itself
// verified.

func clamp255(v int) byte {
	if v < 0 {
		return 0
	}
	if v > 255 {
		return 255
	}
	return byte(v)
}

// refRGBToNV12 converts a packed RGB24 (bpp 3) or RGBA (bpp 4) picture of
// w x h with the given pitch into NV12 of ow x oh (even, >= w, h), exactly
// as fw_rgb_to_nv12 does. y has pitch ow, uv has pitch ow.
func refRGBToNV12(src []byte, pitch, bpp, w, h, ow, oh int) (y, uv []byte) {
	y = make([]byte, ow*oh)
	uv = make([]byte, ow*oh/2)
	for by := 0; by < oh/2; by++ {
		for bx := 0; bx < ow/2; bx++ {
			var sr, sg, sb int
			for dy := 0; dy < 2; dy++ {
				for dx := 0; dx < 2; dx++ {
					ox, oy := 2*bx+dx, 2*by+dy
					sx, sy := min(ox, w-1), min(oy, h-1)
					p := src[sy*pitch+sx*bpp:]
					r, g, b := int(p[0]), int(p[1]), int(p[2])
					y[oy*ow+ox] = clamp255((11966*r + 40254*g + 4064*b + 16<<16 + 1<<15) >> 16)
					sr += r
					sg += g
					sb += b
				}
			}
			uv[by*ow+2*bx] = clamp255((-6596*sr - 22189*sg + 28784*sb + 128<<18 + 1<<17) >> 18)
			uv[by*ow+2*bx+1] = clamp255((28784*sr - 26145*sg - 2639*sb + 128<<18 + 1<<17) >> 18)
		}
	}
	return y, uv
}

// refNV12ToRGB converts a w x h NV12 picture (planes with the given
// pitches) to packed RGB24 (bpp 3) or RGBA (bpp 4), exactly as
// fw_nv12_to_rgb does.
func refNV12ToRGB(y []byte, yPitch int, uv []byte, uvPitch, w, h, bpp int) []byte {
	dst := make([]byte, w*h*bpp)
	for row := 0; row < h; row++ {
		for x := 0; x < w; x++ {
			l := 76309*(int(y[row*yPitch+x])-16) + 1<<15
			c := uv[(row>>1)*uvPitch+x&^1:]
			u, v := int(c[0])-128, int(c[1])-128
			p := dst[(row*w+x)*bpp:]
			p[0] = clamp255((l + 117489*v) >> 16)
			p[1] = clamp255((l - 13975*u - 34925*v) >> 16)
			p[2] = clamp255((l + 138438*u) >> 16)
			if bpp == 4 {
				p[3] = 255
			}
		}
	}
	return dst
}

// testImage returns a smooth w x h packed picture (bpp 3 or 4): triangle
// waves along x, y and the diagonal in the three channels, shifted by
// seed, so every channel sweeps its full range while every 2x2 chroma
// block stays nearly flat (filters with different chroma siting agree).
func testImage(w, h, bpp, seed int) []byte {
	tri := func(v int) byte {
		v %= 510
		if v > 255 {
			v = 510 - v
		}
		return byte(v)
	}
	img := make([]byte, w*h*bpp)
	for j := 0; j < h; j++ {
		for i := 0; i < w; i++ {
			p := img[(j*w+i)*bpp:]
			p[0] = tri(i*510/max(w, 1) + seed)
			p[1] = tri(j*510/max(h, 1) + 3*seed)
			p[2] = tri((i+j)*255/max(w+h, 1) + 7*seed + 60)
			if bpp == 4 {
				p[3] = byte(i ^ j)
			}
		}
	}
	return img
}

// maxDiff returns the largest absolute difference between a and b, which
// must have the same length, and its index.
func maxDiff(a, b []byte) (d, at int) {
	for i := range a {
		x := int(a[i]) - int(b[i])
		if x < 0 {
			x = -x
		}
		if x > d {
			d, at = x, i
		}
	}
	return d, at
}
