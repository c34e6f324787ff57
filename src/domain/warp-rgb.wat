;; The RGB warp of src/domain/augmentation.ts (warpFixedPoint) in WebAssembly SIMD: the same
;; integer arithmetic, so its bytes are the same, at about a third of the cost. Source of
;; src/domain/warp-rgb.wasm.ts: regenerate that file with `node scripts/build-warp-wasm.mjs`
;; after changing this one.
;;
;; Per output pixel: the source position (16.16 fixed point, rounded from a double that steps
;; along the row) selects the four taps; inside the frame, the two rows of taps are loaded as
;; 8 bytes each, interpolated horizontally with a dot product of 11-bit weights and vertically
;; with 32-bit products, then rounded, narrowed and stored as 4 bytes (the 4th is overwritten by
;; the next pixel: the output needs 1 byte of slack after it). Near the frame, taps outside it
;; count as black (scalar); beyond it, the pixel is black.
(module
  (memory (export "memory") 1)
  ;; warp_rgb: one H×W×3 sample at $src into $dst (which must have 1 byte of slack after it).
  ;; $cos, $sin: the inverse map's matrix entries (already divided by the scale). Positions
  ;; are rounded to integers by adding 1.5 × 2^52 and keeping the low 32 bits of the mantissa
  ;; (i32.trunc_sat_f64_s measured a third slower here); JavaScript computes the same rounding as
  ;; ((x + 1.5 × 2^52) − 1.5 × 2^52) | 0.
  (func (export "warp_rgb") (param $src i32) (param $dst i32) (param $width i32) (param $height i32) (param $cos f64) (param $sin f64)
    (local $stepX f64) (local $stepY f64) (local $cx f64) (local $cy f64) (local $px f64) (local $py f64)
    (local $ex f64) (local $ey f64)
    (local $x i32) (local $y i32) (local $sx i32) (local $sy i32) (local $x0 i32) (local $y0 i32)
    (local $fx i32) (local $fy i32) (local $lastX i32) (local $lastY i32) (local $rowStride i32)
    (local $a i32) (local $out i32) (local $c i32) (local $value i32)
    (local $in0x i32) (local $in1x i32) (local $in0y i32) (local $in1y i32)
    (local $w00 i32) (local $w10 i32) (local $w01 i32) (local $w11 i32)
    (local $taps v128) (local $h1 v128) (local $h2 v128) (local $wx v128) (local $bottom v128) (local $v v128)
    (local.set $stepX (f64.mul (local.get $cos) (f64.const 65536)))
    (local.set $stepY (f64.mul (local.get $sin) (f64.const 65536)))
    (local.set $cx (f64.div (f64.convert_i32_s (local.get $width)) (f64.const 2)))
    (local.set $cy (f64.div (f64.convert_i32_s (local.get $height)) (f64.const 2)))
    (local.set $lastX (i32.sub (local.get $width) (i32.const 1)))
    (local.set $lastY (i32.sub (local.get $height) (i32.const 1)))
    (local.set $rowStride (i32.mul (local.get $width) (i32.const 3)))
    (local.set $out (local.get $dst))
    (local.set $px (f64.sub (f64.const 0.5) (local.get $cx)))
    (local.set $y (i32.const 0))
    (block $rows_done
      (loop $rows
        (br_if $rows_done (i32.ge_s (local.get $y) (local.get $height)))
        (local.set $py (f64.sub (f64.add (f64.convert_i32_s (local.get $y)) (f64.const 0.5)) (local.get $cy)))
        ;; ex = (cos*px - sin*py + cx - 0.5) * 65536 + 16, evaluated in the JS order
        (local.set $ex (f64.add (f64.mul (f64.sub (f64.add (f64.sub (f64.mul (local.get $cos) (local.get $px)) (f64.mul (local.get $sin) (local.get $py))) (local.get $cx)) (f64.const 0.5)) (f64.const 65536)) (f64.const 16)))
        (local.set $ey (f64.add (f64.mul (f64.sub (f64.add (f64.add (f64.mul (local.get $sin) (local.get $px)) (f64.mul (local.get $cos) (local.get $py))) (local.get $cy)) (f64.const 0.5)) (f64.const 65536)) (f64.const 16)))
        (local.set $x (i32.const 0))
        (block $cols_done
          (loop $cols
            (br_if $cols_done (i32.ge_s (local.get $x) (local.get $width)))
            (local.set $sx (i32.wrap_i64 (i64.reinterpret_f64 (f64.add (local.get $ex) (f64.const 6755399441055744)))))
            (local.set $sy (i32.wrap_i64 (i64.reinterpret_f64 (f64.add (local.get $ey) (f64.const 6755399441055744)))))
            (local.set $x0 (i32.shr_s (local.get $sx) (i32.const 16)))
            (local.set $y0 (i32.shr_s (local.get $sy) (i32.const 16)))
            (local.set $fx (i32.and (i32.shr_s (local.get $sx) (i32.const 5)) (i32.const 2047)))
            (local.set $fy (i32.and (i32.shr_s (local.get $sy) (i32.const 5)) (i32.const 2047)))
            (if (i32.and (i32.lt_u (local.get $x0) (local.get $lastX)) (i32.lt_u (local.get $y0) (local.get $lastY)))
              (then
                (local.set $a (i32.add (local.get $src) (i32.add (i32.mul (local.get $y0) (local.get $rowStride)) (i32.mul (local.get $x0) (i32.const 3)))))
                (local.set $taps (v128.load64_lane offset=0 1 (i32.add (local.get $a) (local.get $rowStride)) (v128.load64_zero (local.get $a))))
                ;; h1 lanes (i16): top r0 r1 g0 g1 b0 b1, bottom r0 r1; h2: bottom g0 g1 b0 b1, 0…
                (local.set $h1 (i8x16.shuffle 0 16 3 16 1 16 4 16 2 16 5 16 8 16 11 16 (local.get $taps) (v128.const i64x2 0 0)))
                (local.set $h2 (i8x16.shuffle 9 16 12 16 10 16 13 16 16 16 16 16 16 16 16 16 (local.get $taps) (v128.const i64x2 0 0)))
                (local.set $wx (i32x4.splat (i32.or (i32.shl (local.get $fx) (i32.const 16)) (i32.sub (i32.const 2048) (local.get $fx)))))
                ;; horizontal: h1 → top r, g, b, bottom r; h2 → bottom g, b
                (local.set $h1 (i32x4.dot_i16x8_s (local.get $h1) (local.get $wx)))
                (local.set $h2 (i32x4.dot_i16x8_s (local.get $h2) (local.get $wx)))
                (local.set $bottom (i8x16.shuffle 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 (local.get $h1) (local.get $h2)))
                (local.set $v (i32x4.shr_u
                  (i32x4.add
                    (i32x4.add
                      (i32x4.mul (local.get $h1) (i32x4.splat (i32.sub (i32.const 2048) (local.get $fy))))
                      (i32x4.mul (local.get $bottom) (i32x4.splat (local.get $fy))))
                    (v128.const i32x4 2097152 2097152 2097152 2097152))
                  (i32.const 22)))
                (local.set $v (i8x16.narrow_i16x8_u (i16x8.narrow_i32x4_u (local.get $v) (local.get $v)) (local.get $v)))
                (v128.store32_lane 0 (local.get $out) (local.get $v)))
              (else
                (if (i32.or
                      (i32.or (i32.lt_s (local.get $x0) (i32.const -1)) (i32.gt_s (local.get $x0) (local.get $lastX)))
                      (i32.or (i32.lt_s (local.get $y0) (i32.const -1)) (i32.gt_s (local.get $y0) (local.get $lastY))))
                  (then
                    (i32.store16 (local.get $out) (i32.const 0))
                    (i32.store8 offset=2 (local.get $out) (i32.const 0)))
                  (else
                    ;; near the frame: taps outside count as black (scalar, as in JS)
                    (local.set $w11 (i32.mul (local.get $fx) (local.get $fy)))
                    (local.set $w10 (i32.sub (i32.shl (local.get $fx) (i32.const 11)) (local.get $w11)))
                    (local.set $w01 (i32.sub (i32.shl (local.get $fy) (i32.const 11)) (local.get $w11)))
                    (local.set $w00 (i32.sub (i32.sub (i32.sub (i32.const 4194304) (local.get $w10)) (local.get $w01)) (local.get $w11)))
                    (local.set $in0x (i32.ge_s (local.get $x0) (i32.const 0)))
                    (local.set $in1x (i32.lt_s (local.get $x0) (local.get $lastX)))
                    (local.set $in0y (i32.ge_s (local.get $y0) (i32.const 0)))
                    (local.set $in1y (i32.lt_s (local.get $y0) (local.get $lastY)))
                    (local.set $a (i32.add (local.get $src) (i32.add (i32.mul (local.get $y0) (local.get $rowStride)) (i32.mul (local.get $x0) (i32.const 3)))))
                    (local.set $c (i32.const 0))
                    (loop $channels
                      (local.set $value (i32.const 2097152))
                      (if (i32.and (local.get $in0y) (local.get $in0x))
                        (then (local.set $value (i32.add (local.get $value) (i32.mul (local.get $w00) (i32.load8_u (i32.add (local.get $a) (local.get $c))))))))
                      (if (i32.and (local.get $in0y) (local.get $in1x))
                        (then (local.set $value (i32.add (local.get $value) (i32.mul (local.get $w10) (i32.load8_u (i32.add (i32.add (local.get $a) (i32.const 3)) (local.get $c))))))))
                      (if (i32.and (local.get $in1y) (local.get $in0x))
                        (then (local.set $value (i32.add (local.get $value) (i32.mul (local.get $w01) (i32.load8_u (i32.add (i32.add (local.get $a) (local.get $rowStride)) (local.get $c))))))))
                      (if (i32.and (local.get $in1y) (local.get $in1x))
                        (then (local.set $value (i32.add (local.get $value) (i32.mul (local.get $w11) (i32.load8_u (i32.add (i32.add (i32.add (local.get $a) (local.get $rowStride)) (i32.const 3)) (local.get $c))))))))
                      (i32.store8 (i32.add (local.get $out) (local.get $c)) (i32.shr_u (local.get $value) (i32.const 22)))
                      (local.set $c (i32.add (local.get $c) (i32.const 1)))
                      (br_if $channels (i32.lt_u (local.get $c) (i32.const 3))))))))
            (local.set $ex (f64.add (local.get $ex) (local.get $stepX)))
            (local.set $ey (f64.add (local.get $ey) (local.get $stepY)))
            (local.set $out (i32.add (local.get $out) (i32.const 3)))
            (local.set $x (i32.add (local.get $x) (i32.const 1)))
            (br $cols)))
        (local.set $y (i32.add (local.get $y) (i32.const 1)))
        (br $rows)))))
