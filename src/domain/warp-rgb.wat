;; The RGB warp of src/domain/augmentation.ts (warpFixedPoint) in WebAssembly SIMD, four output
;; pixels at a time: the same integer arithmetic, so the same bytes. Source of
;; src/domain/warp-rgb.wasm.ts: regenerate that file with `node scripts/build-warp-wasm.mjs`
;; after changing this one.
;;
;; The sample is first copied with a one-pixel black border around it (pad_rgb), so that every
;; output pixel takes the same path: its source position is clamped to the border (a position
;; beyond the border becomes the border itself with a zero weight on the pixel inside, which is
;; black, as the frame's outside is), and its four taps are always read, two rows of 8 bytes.
;; Per four output pixels: positions step by one i64x2 add per two pixels (32 fractional bits,
;; exact), the taps are loaded by address, interpolated across the row with a 16-bit dot product
;; of 11-bit weights and down it with 32-bit products, then rounded, narrowed and stored as 16
;; bytes (12 of them the pixels: the output needs 16 bytes of slack after it, and a row's last
;; group may write up to 3 pixels past its end, which the next row overwrites).
(module
  (memory (export "memory") 1)

  ;; pad_rgb: the H×W×3 sample at $src into $pad as (H+2)×(W+2)×3 with a black border; the
  ;; caller leaves one more padded row and 16 bytes after it for reads with a zero weight.
  (func (export "pad_rgb") (param $src i32) (param $pad i32) (param $width i32) (param $height i32)
    (local $row i32) (local $stride i32) (local $y i32) (local $to i32)
    (local.set $row (i32.mul (local.get $width) (i32.const 3)))
    (local.set $stride (i32.add (local.get $row) (i32.const 6)))
    ;; the top border row and the left border of row 0
    (memory.fill (local.get $pad) (i32.const 0) (i32.add (local.get $stride) (i32.const 3)))
    (local.set $to (i32.add (i32.add (local.get $pad) (local.get $stride)) (i32.const 3)))
    (local.set $y (i32.const 0))
    (block $done
      (loop $rows
        (br_if $done (i32.ge_s (local.get $y) (local.get $height)))
        (memory.copy (local.get $to) (i32.add (local.get $src) (i32.mul (local.get $y) (local.get $row))) (local.get $row))
        ;; the right border of this row and the left border of the next
        (i32.store (i32.add (local.get $to) (local.get $row)) (i32.const 0))
        (i32.store16 offset=4 (i32.add (local.get $to) (local.get $row)) (i32.const 0))
        (local.set $to (i32.add (local.get $to) (local.get $stride)))
        (local.set $y (i32.add (local.get $y) (i32.const 1)))
        (br $rows)))
    ;; the bottom border row (its left border is already black), and the row read past it
    (memory.fill (local.get $to) (i32.const 0) (i32.add (local.get $stride) (local.get $stride))))

  ;; warp_rgb: from the padded sample at $pad (pad_rgb) into $dst (H×W×3, 16 bytes of slack).
  ;; $cos, $sin: the inverse map's matrix entries (already divided by the scale).
  (func (export "warp_rgb") (param $pad i32) (param $dst i32) (param $width i32) (param $height i32) (param $cos f64) (param $sin f64)
    (local $cx f64) (local $cy f64) (local $px f64) (local $py f64)
    (local $du i64) (local $dv i64) (local $ru i64) (local $rv i64) (local $ue i64) (local $ve i64)
    (local $x i32) (local $y i32) (local $out i32) (local $row i32) (local $stride i32) (local $origin i32)
    (local $a0 i32) (local $a1 i32) (local $a2 i32) (local $a3 i32)
    (local $u01 v128) (local $u23 v128) (local $v01 v128) (local $v23 v128) (local $stepU v128) (local $stepV v128)
    (local $highU v128) (local $highV v128) (local $strideV v128) (local $originV v128)
    (local $u v128) (local $v v128) (local $fx v128) (local $fy v128) (local $addr v128) (local $w v128)
    (local $t01 v128) (local $t23 v128) (local $b01 v128) (local $b23 v128)
    (local $w0 v128) (local $w1 v128) (local $w2 v128) (local $f0 v128) (local $f1 v128) (local $f2 v128)
    (local $top0 v128) (local $top1 v128) (local $top2 v128) (local $v0 v128) (local $v1 v128) (local $v2 v128)
    (local.set $row (i32.mul (local.get $width) (i32.const 3)))
    (local.set $stride (i32.add (local.get $row) (i32.const 6)))
    (local.set $origin (i32.add (i32.add (local.get $pad) (local.get $stride)) (i32.const 3)))
    (local.set $strideV (i32x4.splat (local.get $stride)))
    (local.set $originV (i32x4.splat (local.get $origin)))
    ;; positions in 1/2^32 pixel; the clamp keeps them within the border: [-1, width] × [-1, height]
    (local.set $highU (i32x4.splat (i32.shl (local.get $width) (i32.const 16))))
    (local.set $highV (i32x4.splat (i32.shl (local.get $height) (i32.const 16))))
    (local.set $du (i64.trunc_sat_f64_s (f64.floor (f64.add (f64.mul (local.get $cos) (f64.const 4294967296)) (f64.const 0.5)))))
    (local.set $dv (i64.trunc_sat_f64_s (f64.floor (f64.add (f64.mul (local.get $sin) (f64.const 4294967296)) (f64.const 0.5)))))
    (local.set $stepU (i64x2.splat (i64.shl (local.get $du) (i64.const 2))))
    (local.set $stepV (i64x2.splat (i64.shl (local.get $dv) (i64.const 2))))
    (local.set $cx (f64.div (f64.convert_i32_s (local.get $width)) (f64.const 2)))
    (local.set $cy (f64.div (f64.convert_i32_s (local.get $height)) (f64.const 2)))
    (local.set $px (f64.sub (f64.const 0.5) (local.get $cx)))
    (local.set $y (i32.const 0))
    (block $rows_done
      (loop $rows
        (br_if $rows_done (i32.ge_s (local.get $y) (local.get $height)))
        (local.set $py (f64.sub (f64.add (f64.convert_i32_s (local.get $y)) (f64.const 0.5)) (local.get $cy)))
        ;; the row's first position, as warpFixedPoint computes it, plus half a weight step (2^20)
        ;; so that truncating to 11-bit weights rounds them
        (local.set $ru (i64.add (i64.trunc_sat_f64_s (f64.floor (f64.add (f64.mul
          (f64.sub (f64.add (f64.sub (f64.mul (local.get $cos) (local.get $px)) (f64.mul (local.get $sin) (local.get $py))) (local.get $cx)) (f64.const 0.5))
          (f64.const 4294967296)) (f64.const 0.5)))) (i64.const 1048576)))
        (local.set $rv (i64.add (i64.trunc_sat_f64_s (f64.floor (f64.add (f64.mul
          (f64.sub (f64.add (f64.add (f64.mul (local.get $sin) (local.get $px)) (f64.mul (local.get $cos) (local.get $py))) (local.get $cy)) (f64.const 0.5))
          (f64.const 4294967296)) (f64.const 0.5)))) (i64.const 1048576)))
        (local.set $out (i32.add (local.get $dst) (i32.mul (local.get $y) (local.get $row))))
        ;; A row whose every position lies beyond the border on one side is black: filled at once.
        (local.set $ue (i64.add (local.get $ru) (i64.mul (local.get $du) (i64.extend_i32_s (i32.sub (local.get $width) (i32.const 1))))))
        (local.set $ve (i64.add (local.get $rv) (i64.mul (local.get $dv) (i64.extend_i32_s (i32.sub (local.get $width) (i32.const 1))))))
        (if (i32.or
              (i32.or
                (i64.le_s (i64.shr_s (select (local.get $ru) (local.get $ue) (i64.gt_s (local.get $ru) (local.get $ue))) (i64.const 16)) (i64.const -65536))
                (i64.ge_s (i64.shr_s (select (local.get $ru) (local.get $ue) (i64.lt_s (local.get $ru) (local.get $ue))) (i64.const 16)) (i64.extend_i32_s (i32.shl (local.get $width) (i32.const 16)))))
              (i32.or
                (i64.le_s (i64.shr_s (select (local.get $rv) (local.get $ve) (i64.gt_s (local.get $rv) (local.get $ve))) (i64.const 16)) (i64.const -65536))
                (i64.ge_s (i64.shr_s (select (local.get $rv) (local.get $ve) (i64.lt_s (local.get $rv) (local.get $ve))) (i64.const 16)) (i64.extend_i32_s (i32.shl (local.get $height) (i32.const 16))))))
          (then
            (memory.fill (local.get $out) (i32.const 0) (local.get $row))
            (local.set $y (i32.add (local.get $y) (i32.const 1)))
            (br $rows)))
        (local.set $u01 (i64x2.replace_lane 1 (i64x2.splat (local.get $ru)) (i64.add (local.get $ru) (local.get $du))))
        (local.set $v01 (i64x2.replace_lane 1 (i64x2.splat (local.get $rv)) (i64.add (local.get $rv) (local.get $dv))))
        (local.set $u23 (i64x2.add (local.get $u01) (i64x2.splat (i64.shl (local.get $du) (i64.const 1)))))
        (local.set $v23 (i64x2.add (local.get $v01) (i64x2.splat (i64.shl (local.get $dv) (i64.const 1)))))
        (local.set $x (i32.const 0))
        (loop $cols
          ;; 16.16 positions of the four pixels (bits 16–47 of each i64), clamped to the border
          (local.set $u (i32x4.min_s (i32x4.max_s
            (i8x16.shuffle 2 3 4 5 10 11 12 13 18 19 20 21 26 27 28 29 (local.get $u01) (local.get $u23))
            (v128.const i32x4 -65536 -65536 -65536 -65536)) (local.get $highU)))
          (local.set $v (i32x4.min_s (i32x4.max_s
            (i8x16.shuffle 2 3 4 5 10 11 12 13 18 19 20 21 26 27 28 29 (local.get $v01) (local.get $v23))
            (v128.const i32x4 -65536 -65536 -65536 -65536)) (local.get $highV)))
          (local.set $fx (v128.and (i32x4.shr_s (local.get $u) (i32.const 5)) (v128.const i32x4 2047 2047 2047 2047)))
          (local.set $fy (v128.and (i32x4.shr_s (local.get $v) (i32.const 5)) (v128.const i32x4 2047 2047 2047 2047)))
          (local.set $addr (i32x4.add (local.get $originV) (i32x4.add
            (i32x4.mul (i32x4.shr_s (local.get $v) (i32.const 16)) (local.get $strideV))
            (i32x4.mul (i32x4.shr_s (local.get $u) (i32.const 16)) (v128.const i32x4 3 3 3 3)))))
          (local.set $a0 (i32x4.extract_lane 0 (local.get $addr)))
          (local.set $a1 (i32x4.extract_lane 1 (local.get $addr)))
          (local.set $a2 (i32x4.extract_lane 2 (local.get $addr)))
          (local.set $a3 (i32x4.extract_lane 3 (local.get $addr)))
          (local.set $t01 (v128.load64_lane 1 (local.get $a1) (v128.load64_zero (local.get $a0))))
          (local.set $t23 (v128.load64_lane 1 (local.get $a3) (v128.load64_zero (local.get $a2))))
          (local.set $b01 (v128.load64_lane 1 (i32.add (local.get $a1) (local.get $stride)) (v128.load64_zero (i32.add (local.get $a0) (local.get $stride)))))
          (local.set $b23 (v128.load64_lane 1 (i32.add (local.get $a3) (local.get $stride)) (v128.load64_zero (i32.add (local.get $a2) (local.get $stride)))))
          ;; per pixel, the i16 pair (2048 − fx, fx); spread over the 12 values' lanes
          (local.set $w (v128.or (i32x4.shl (local.get $fx) (i32.const 16)) (i32x4.sub (v128.const i32x4 2048 2048 2048 2048) (local.get $fx))))
          (local.set $w0 (i8x16.shuffle 0 1 2 3 0 1 2 3 0 1 2 3 4 5 6 7 (local.get $w) (local.get $w)))
          (local.set $w1 (i8x16.shuffle 4 5 6 7 4 5 6 7 8 9 10 11 8 9 10 11 (local.get $w) (local.get $w)))
          (local.set $w2 (i8x16.shuffle 8 9 10 11 12 13 14 15 12 13 14 15 12 13 14 15 (local.get $w) (local.get $w)))
          (local.set $f0 (i8x16.shuffle 0 1 2 3 0 1 2 3 0 1 2 3 4 5 6 7 (local.get $fy) (local.get $fy)))
          (local.set $f1 (i8x16.shuffle 4 5 6 7 4 5 6 7 8 9 10 11 8 9 10 11 (local.get $fy) (local.get $fy)))
          (local.set $f2 (i8x16.shuffle 8 9 10 11 12 13 14 15 12 13 14 15 12 13 14 15 (local.get $fy) (local.get $fy)))
          ;; across the row: values 0–3 (p0 r g b, p1 r), 4–7 (p1 g b, p2 r g), 8–11 (p2 b, p3 r g b)
          (local.set $top0 (i32x4.dot_i16x8_s (i8x16.shuffle 0 16 3 16 1 16 4 16 2 16 5 16 8 16 11 16 (local.get $t01) (v128.const i64x2 0 0)) (local.get $w0)))
          (local.set $top1 (i32x4.dot_i16x8_s (i16x8.extend_low_i8x16_u (i8x16.shuffle 9 12 10 13 16 19 17 20 0 0 0 0 0 0 0 0 (local.get $t01) (local.get $t23))) (local.get $w1)))
          (local.set $top2 (i32x4.dot_i16x8_s (i8x16.shuffle 2 16 5 16 8 16 11 16 9 16 12 16 10 16 13 16 (local.get $t23) (v128.const i64x2 0 0)) (local.get $w2)))
          ;; down it: (top × 2048 + (bottom − top) × fy + 2^21) >> 22
          (local.set $v0 (i32x4.shr_u (i32x4.add (i32x4.add (i32x4.shl (local.get $top0) (i32.const 11))
            (i32x4.mul (i32x4.sub (i32x4.dot_i16x8_s (i8x16.shuffle 0 16 3 16 1 16 4 16 2 16 5 16 8 16 11 16 (local.get $b01) (v128.const i64x2 0 0)) (local.get $w0)) (local.get $top0)) (local.get $f0)))
            (v128.const i32x4 2097152 2097152 2097152 2097152)) (i32.const 22)))
          (local.set $v1 (i32x4.shr_u (i32x4.add (i32x4.add (i32x4.shl (local.get $top1) (i32.const 11))
            (i32x4.mul (i32x4.sub (i32x4.dot_i16x8_s (i16x8.extend_low_i8x16_u (i8x16.shuffle 9 12 10 13 16 19 17 20 0 0 0 0 0 0 0 0 (local.get $b01) (local.get $b23))) (local.get $w1)) (local.get $top1)) (local.get $f1)))
            (v128.const i32x4 2097152 2097152 2097152 2097152)) (i32.const 22)))
          (local.set $v2 (i32x4.shr_u (i32x4.add (i32x4.add (i32x4.shl (local.get $top2) (i32.const 11))
            (i32x4.mul (i32x4.sub (i32x4.dot_i16x8_s (i8x16.shuffle 2 16 5 16 8 16 11 16 9 16 12 16 10 16 13 16 (local.get $b23) (v128.const i64x2 0 0)) (local.get $w2)) (local.get $top2)) (local.get $f2)))
            (v128.const i32x4 2097152 2097152 2097152 2097152)) (i32.const 22)))
          (v128.store (local.get $out) (i8x16.narrow_i16x8_u
            (i16x8.narrow_i32x4_u (local.get $v0) (local.get $v1))
            (i16x8.narrow_i32x4_u (local.get $v2) (local.get $v2))))
          (local.set $u01 (i64x2.add (local.get $u01) (local.get $stepU)))
          (local.set $u23 (i64x2.add (local.get $u23) (local.get $stepU)))
          (local.set $v01 (i64x2.add (local.get $v01) (local.get $stepV)))
          (local.set $v23 (i64x2.add (local.get $v23) (local.get $stepV)))
          (local.set $out (i32.add (local.get $out) (i32.const 12)))
          (local.set $x (i32.add (local.get $x) (i32.const 4)))
          (br_if $cols (i32.lt_s (local.get $x) (local.get $width))))
        (local.set $y (i32.add (local.get $y) (i32.const 1)))
        (br $rows)))))
