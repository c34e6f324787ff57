;; The RGB warp of src/domain/augmentation.ts (warpFixedPoint) in WebAssembly SIMD, four output
;; pixels at a time: the same integer arithmetic, so the same bytes. Source of
;; src/domain/warp-rgb.wasm.ts: regenerate that file with `node scripts/build-wasm.mjs`
;; after changing this one.
;;
;; The sample is first copied with a black border of 8 pixels around it (pad_rgb). Each output row
;; is cut, before any pixel of it is computed, into the stretch whose source positions may lie
;; within a pixel of the frame (found in floating point, a pixel wider than needed on each side)
;; and the rest, which is black (a position one pixel or more outside the frame has all its taps
;; on the border, or a zero weight on the one inside): the rest is filled at once, and the stretch
;; is computed four pixels at a time with no clamp or bounds check. Its last group may go up to 3
;; pixels past it: with steps of at most 2 pixels (|cos|, |sin| <= 2, checked by warp-simd.ts),
;; those positions stay within 8 pixels of the frame, on the border, so they give black as well.
;; Per four output pixels: positions step by one i64x2 add per two pixels (32 fractional bits,
;; exact; held times 2^16 so that the 16.16 positions are the lanes' high halves, picked by one
;; shuffle). Each pixel then stands alone in a vector, its values in the lanes (r, g, b, 0): its
;; two rows of taps are loaded by address, spread by one byte shuffle into the i16 pairs
;; (left, right) of each channel, interpolated across the row by one 16-bit dot product with the
;; pair (2048 - fx, fx) and down it with one 32-bit product, so no shuffle moves values between
;; pixels; the four results are rounded, narrowed together and stored as four 4-byte words, 3
;; bytes apart (a group may write a byte past its last pixel, and a row's last group up to 3
;; pixels past the row, which the next row overwrites; the last row is written into $last, 16
;; bytes of slack after it, and copied from there, so that nothing after the sample's own bytes is
;; touched). The module before this one clamped every position to a one-pixel border and computed
;; every pixel of a row that was not wholly outside the frame: the same bytes, 123 machine
;; instructions per four pixels against 103 as V8 compiles them, and 1.04-1.16x the time per
;; sample in bench/warp-micro.ts (machine load about 10).
(module
  ;; The memory is the caller's: the module's own (warp-simd.ts), or a batch chunk's, so that a
  ;; chunk's samples are warped where they lie.
  (import "env" "memory" (memory 1))

  ;; pad_rgb: the H×W×3 sample at $src into $pad as (H+16)×(W+16)×3 with a black border of 8
  ;; pixels; the caller leaves 16 bytes after it for loads that run past it, and 15 readable bytes
  ;; after the sample.
  (func (export "pad_rgb") (param $src i32) (param $pad i32) (param $width i32) (param $height i32)
    (local $row i32) (local $stride i32) (local $y i32) (local $to i32) (local $from i32) (local $x i32) (local $end i32)
    (local.set $row (i32.mul (local.get $width) (i32.const 3)))
    (local.set $stride (i32.add (local.get $row) (i32.const 48)))
    ;; the 8 top border rows and the left border of row 0
    (memory.fill (local.get $pad) (i32.const 0) (i32.add (i32.shl (local.get $stride) (i32.const 3)) (i32.const 24)))
    (local.set $to (i32.add (i32.add (local.get $pad) (i32.shl (local.get $stride) (i32.const 3))) (i32.const 24)))
    (local.set $y (i32.const 0))
    (block $done
      (loop $rows
        (br_if $done (i32.ge_s (local.get $y) (local.get $height)))
        ;; the row, 16 bytes at a time (a call of memory.copy per row cost more than the copy): up
        ;; to 15 bytes are read past the sample's end and written past the row's, over the border,
        ;; which is written after
        (local.set $from (i32.add (local.get $src) (i32.mul (local.get $y) (local.get $row))))
        (local.set $x (i32.const 0))
        (loop $copy
          (v128.store (i32.add (local.get $to) (local.get $x)) (v128.load (i32.add (local.get $from) (local.get $x))))
          (local.set $x (i32.add (local.get $x) (i32.const 16)))
          (br_if $copy (i32.lt_s (local.get $x) (local.get $row))))
        ;; the right border of this row and the left border of the next: 48 bytes
        (local.set $end (i32.add (local.get $to) (local.get $row)))
        (v128.store (local.get $end) (v128.const i64x2 0 0))
        (v128.store offset=16 (local.get $end) (v128.const i64x2 0 0))
        (v128.store offset=32 (local.get $end) (v128.const i64x2 0 0))
        (local.set $to (i32.add (local.get $to) (local.get $stride)))
        (local.set $y (i32.add (local.get $y) (i32.const 1)))
        (br $rows)))
    ;; the 8 bottom border rows (the left border of the first is already black) and 16 bytes after
    (memory.fill (local.get $to) (i32.const 0) (i32.add (i32.shl (local.get $stride) (i32.const 3)) (i32.const 16))))

  ;; warp_rgb: from the padded sample at $pad (pad_rgb) into $dst (H×W×3 bytes, exactly: the last
  ;; row is written at $last, which has room for a row and 16 bytes, and copied). $dst may be where
  ;; the sample itself was: only the padded copy is read. $cos, $sin: the inverse map's matrix
  ;; entries (already divided by the scale), each at most 2 in size.
  (func (export "warp_rgb") (param $pad i32) (param $dst i32) (param $width i32) (param $height i32) (param $cos f64) (param $sin f64) (param $last i32)
    (local $cx f64) (local $cy f64) (local $px f64) (local $py f64) (local $fu f64) (local $fv f64) (local $dfu f64) (local $dfv f64)
    (local $from f64) (local $until f64) (local $t0 f64) (local $t1 f64)
    (local $du i64) (local $dv i64) (local $ru i64) (local $rv i64)
    (local $x i32) (local $y i32) (local $out i32) (local $row i32) (local $stride i32) (local $origin i32) (local $a i32)
    (local $xa i32) (local $xb i32)
    (local $u01 v128) (local $u23 v128) (local $v01 v128) (local $v23 v128) (local $halfU v128) (local $halfV v128)
    (local $scales v128) (local $originV v128) (local $spread v128)
    (local $u v128) (local $v v128) (local $fy v128) (local $wx v128) (local $addr v128) (local $w v128) (local $top v128)
    (local $p0 v128) (local $p1 v128) (local $p2 v128) (local $p3 v128)
    (local.set $row (i32.mul (local.get $width) (i32.const 3)))
    (local.set $stride (i32.add (local.get $row) (i32.const 48)))
    (local.set $origin (i32.add (i32.add (local.get $pad) (i32.shl (local.get $stride) (i32.const 3))) (i32.const 24)))
    ;; a tap's address is origin + (x, y) · (3, stride): one dot product of i16 pairs
    (local.set $scales (i32x4.splat (i32.or (i32.const 3) (i32.shl (local.get $stride) (i32.const 16)))))
    (local.set $originV (i32x4.splat (local.get $origin)))
    ;; a row of taps, 8 bytes (r0 g0 b0 r1 g1 b1 ..), to the i16 pairs (r0 r1) (g0 g1) (b0 b1) (0 0)
    (local.set $spread (v128.const i8x16 0 0x80 3 0x80 1 0x80 4 0x80 2 0x80 5 0x80 0x80 0x80 0x80 0x80))
    ;; positions in 1/2^32 pixel
    (local.set $du (i64.trunc_sat_f64_s (f64.floor (f64.add (f64.mul (local.get $cos) (f64.const 4294967296)) (f64.const 0.5)))))
    (local.set $dv (i64.trunc_sat_f64_s (f64.floor (f64.add (f64.mul (local.get $sin) (f64.const 4294967296)) (f64.const 0.5)))))
    ;; two pixels' steps, times 2^16: pixels 2–3 are pixels 0–1 plus this, the next 0–1 are 2–3 plus this
    (local.set $halfU (i64x2.splat (i64.shl (local.get $du) (i64.const 17))))
    (local.set $halfV (i64x2.splat (i64.shl (local.get $dv) (i64.const 17))))
    (local.set $dfu (f64.div (f64.convert_i64_s (local.get $du)) (f64.const 4294967296)))
    (local.set $dfv (f64.div (f64.convert_i64_s (local.get $dv)) (f64.const 4294967296)))
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
        (local.set $out (select (local.get $last) (i32.add (local.get $dst) (i32.mul (local.get $y) (local.get $row)))
          (i32.eq (local.get $y) (i32.sub (local.get $height) (i32.const 1)))))
        ;; The stretch [from, until) of x whose positions lie strictly within (-2, width + 1) ×
        ;; (-2, height + 1), in floating point: a pixel wider on each side than the positions that
        ;; can be other than black, (-1, width) × (-1, height) in 16.16, so rounding cannot matter.
        (local.set $fu (f64.div (f64.convert_i64_s (local.get $ru)) (f64.const 4294967296)))
        (local.set $fv (f64.div (f64.convert_i64_s (local.get $rv)) (f64.const 4294967296)))
        (local.set $from (f64.const 0))
        (local.set $until (f64.convert_i32_s (local.get $width)))
        (if (f64.eq (local.get $dfu) (f64.const 0))
          (then
            (if (i32.or (f64.le (local.get $fu) (f64.const -2)) (f64.ge (local.get $fu) (f64.add (f64.convert_i32_s (local.get $width)) (f64.const 1))))
              (then (local.set $until (f64.const 0)))))
          (else
            (local.set $t0 (f64.div (f64.sub (f64.const -2) (local.get $fu)) (local.get $dfu)))
            (local.set $t1 (f64.div (f64.sub (f64.add (f64.convert_i32_s (local.get $width)) (f64.const 1)) (local.get $fu)) (local.get $dfu)))
            (local.set $from (f64.max (local.get $from) (f64.min (local.get $t0) (local.get $t1))))
            (local.set $until (f64.min (local.get $until) (f64.max (local.get $t0) (local.get $t1))))))
        (if (f64.eq (local.get $dfv) (f64.const 0))
          (then
            (if (i32.or (f64.le (local.get $fv) (f64.const -2)) (f64.ge (local.get $fv) (f64.add (f64.convert_i32_s (local.get $height)) (f64.const 1))))
              (then (local.set $until (f64.const 0)))))
          (else
            (local.set $t0 (f64.div (f64.sub (f64.const -2) (local.get $fv)) (local.get $dfv)))
            (local.set $t1 (f64.div (f64.sub (f64.add (f64.convert_i32_s (local.get $height)) (f64.const 1)) (local.get $fv)) (local.get $dfv)))
            (local.set $from (f64.max (local.get $from) (f64.min (local.get $t0) (local.get $t1))))
            (local.set $until (f64.min (local.get $until) (f64.max (local.get $t0) (local.get $t1))))))
        ;; whole pixels: from rounded down, until rounded up (a pixel more rather than one less)
        (local.set $xa (i32.trunc_sat_f64_s (f64.floor (local.get $from))))
        (local.set $xb (i32.trunc_sat_f64_s (f64.ceil (local.get $until))))
        (if (i32.ge_s (local.get $xa) (local.get $xb))
          (then
            (memory.fill (local.get $out) (i32.const 0) (local.get $row))
            (local.set $y (i32.add (local.get $y) (i32.const 1)))
            (br $rows)))
        ;; black before the stretch
        (memory.fill (local.get $out) (i32.const 0) (i32.mul (local.get $xa) (i32.const 3)))
        (local.set $out (i32.add (local.get $out) (i32.mul (local.get $xa) (i32.const 3))))
        (local.set $ru (i64.add (local.get $ru) (i64.mul (local.get $du) (i64.extend_i32_s (local.get $xa)))))
        (local.set $rv (i64.add (local.get $rv) (i64.mul (local.get $dv) (i64.extend_i32_s (local.get $xa)))))
        ;; pixels xa to xa + 3, times 2^16 (the positions stay below 2^47, so below 2^63 after)
        (local.set $u01 (i64x2.shl (i64x2.replace_lane 1 (i64x2.splat (local.get $ru)) (i64.add (local.get $ru) (local.get $du))) (i32.const 16)))
        (local.set $v01 (i64x2.shl (i64x2.replace_lane 1 (i64x2.splat (local.get $rv)) (i64.add (local.get $rv) (local.get $dv))) (i32.const 16)))
        (local.set $x (local.get $xa))
        (loop $cols
          (local.set $u23 (i64x2.add (local.get $u01) (local.get $halfU)))
          (local.set $v23 (i64x2.add (local.get $v01) (local.get $halfV)))
          ;; 16.16 positions of the four pixels (the lanes' high halves)
          (local.set $u (i8x16.shuffle 4 5 6 7 12 13 14 15 20 21 22 23 28 29 30 31 (local.get $u01) (local.get $u23)))
          (local.set $v (i8x16.shuffle 4 5 6 7 12 13 14 15 20 21 22 23 28 29 30 31 (local.get $v01) (local.get $v23)))
          ;; the top-left taps' addresses, from the i16 pairs (x, y) of the positions' integer parts
          (local.set $addr (i32x4.add (local.get $originV) (i32x4.dot_i16x8_s
            (i8x16.shuffle 0 1 18 19 4 5 22 23 8 9 26 27 12 13 30 31 (i32x4.shr_u (local.get $u) (i32.const 16)) (local.get $v))
            (local.get $scales))))
          ;; 11-bit weights (bits 5–15 of the positions); across the row as the i16 pair (2048 - fx, fx)
          (local.set $wx (i32x4.shr_u (i32x4.shl (local.get $u) (i32.const 16)) (i32.const 21)))
          (local.set $wx (i32x4.add (i32x4.shl (local.get $wx) (i32.const 16)) (i32x4.sub (v128.const i32x4 2048 2048 2048 2048) (local.get $wx))))
          (local.set $fy (i32x4.shr_u (i32x4.shl (local.get $v) (i32.const 16)) (i32.const 21)))
          ;; per pixel: top = (2048 - fx) left + fx right, each channel, for the two rows;
          ;; value × 2^22 = top × 2048 + (bottom - top) × fy, kept here >> 21
          (local.set $a (i32x4.extract_lane 0 (local.get $addr)))
          (local.set $w (i8x16.shuffle 0 1 2 3 0 1 2 3 0 1 2 3 0 1 2 3 (local.get $wx) (local.get $wx)))
          (local.set $top (i32x4.dot_i16x8_s (i8x16.swizzle (v128.load64_zero (local.get $a)) (local.get $spread)) (local.get $w)))
          (local.set $p0 (i32x4.shr_u (i32x4.add (i32x4.shl (local.get $top) (i32.const 11))
            (i32x4.mul (i32x4.sub (i32x4.dot_i16x8_s (i8x16.swizzle (v128.load64_zero (i32.add (local.get $a) (local.get $stride))) (local.get $spread)) (local.get $w)) (local.get $top))
              (i8x16.shuffle 0 1 2 3 0 1 2 3 0 1 2 3 0 1 2 3 (local.get $fy) (local.get $fy)))) (i32.const 21)))
          (local.set $a (i32x4.extract_lane 1 (local.get $addr)))
          (local.set $w (i8x16.shuffle 4 5 6 7 4 5 6 7 4 5 6 7 4 5 6 7 (local.get $wx) (local.get $wx)))
          (local.set $top (i32x4.dot_i16x8_s (i8x16.swizzle (v128.load64_zero (local.get $a)) (local.get $spread)) (local.get $w)))
          (local.set $p1 (i32x4.shr_u (i32x4.add (i32x4.shl (local.get $top) (i32.const 11))
            (i32x4.mul (i32x4.sub (i32x4.dot_i16x8_s (i8x16.swizzle (v128.load64_zero (i32.add (local.get $a) (local.get $stride))) (local.get $spread)) (local.get $w)) (local.get $top))
              (i8x16.shuffle 4 5 6 7 4 5 6 7 4 5 6 7 4 5 6 7 (local.get $fy) (local.get $fy)))) (i32.const 21)))
          ;; A branch never taken ($row is at least 3 here), as a fence between pixels 0–1 and 2–3:
          ;; without it V8 loads all four pixels' taps before the first products and spills about
          ;; ten vectors to the stack each step (103 instructions per step with it, 5 of them on the
          ;; stack, against 107 and 10).
          (if (i32.eqz (local.get $row)) (then (local.set $p1 (local.get $p0))))
          (local.set $a (i32x4.extract_lane 2 (local.get $addr)))
          (local.set $w (i8x16.shuffle 8 9 10 11 8 9 10 11 8 9 10 11 8 9 10 11 (local.get $wx) (local.get $wx)))
          (local.set $top (i32x4.dot_i16x8_s (i8x16.swizzle (v128.load64_zero (local.get $a)) (local.get $spread)) (local.get $w)))
          (local.set $p2 (i32x4.shr_u (i32x4.add (i32x4.shl (local.get $top) (i32.const 11))
            (i32x4.mul (i32x4.sub (i32x4.dot_i16x8_s (i8x16.swizzle (v128.load64_zero (i32.add (local.get $a) (local.get $stride))) (local.get $spread)) (local.get $w)) (local.get $top))
              (i8x16.shuffle 8 9 10 11 8 9 10 11 8 9 10 11 8 9 10 11 (local.get $fy) (local.get $fy)))) (i32.const 21)))
          (local.set $a (i32x4.extract_lane 3 (local.get $addr)))
          (local.set $w (i8x16.shuffle 12 13 14 15 12 13 14 15 12 13 14 15 12 13 14 15 (local.get $wx) (local.get $wx)))
          (local.set $top (i32x4.dot_i16x8_s (i8x16.swizzle (v128.load64_zero (local.get $a)) (local.get $spread)) (local.get $w)))
          (local.set $p3 (i32x4.shr_u (i32x4.add (i32x4.shl (local.get $top) (i32.const 11))
            (i32x4.mul (i32x4.sub (i32x4.dot_i16x8_s (i8x16.swizzle (v128.load64_zero (i32.add (local.get $a) (local.get $stride))) (local.get $spread)) (local.get $w)) (local.get $top))
              (i8x16.shuffle 12 13 14 15 12 13 14 15 12 13 14 15 12 13 14 15 (local.get $fy) (local.get $fy)))) (i32.const 21)))
          ;; (value × 2^22 + 2^21) >> 22 is the average, rounded up, of (value × 2^22) >> 21 and 0
          (local.set $p0 (i8x16.narrow_i16x8_u
            (i16x8.avgr_u (i16x8.narrow_i32x4_u (local.get $p0) (local.get $p1)) (v128.const i64x2 0 0))
            (i16x8.avgr_u (i16x8.narrow_i32x4_u (local.get $p2) (local.get $p3)) (v128.const i64x2 0 0))))
          ;; (r g b 0) four times: each pixel's word overwrites the 0 of the one before
          (v128.store32_lane 0 (local.get $out) (local.get $p0))
          (v128.store32_lane offset=3 1 (local.get $out) (local.get $p0))
          (v128.store32_lane offset=6 2 (local.get $out) (local.get $p0))
          (v128.store32_lane offset=9 3 (local.get $out) (local.get $p0))
          (local.set $u01 (i64x2.add (local.get $u23) (local.get $halfU)))
          (local.set $v01 (i64x2.add (local.get $v23) (local.get $halfV)))
          (local.set $out (i32.add (local.get $out) (i32.const 12)))
          (local.set $x (i32.add (local.get $x) (i32.const 4)))
          (br_if $cols (i32.lt_s (local.get $x) (local.get $xb))))
        ;; black after the stretch (its last group may have gone past it, or past the row)
        (if (i32.lt_s (local.get $x) (local.get $width))
          (then (memory.fill (local.get $out) (i32.const 0) (i32.mul (i32.sub (local.get $width) (local.get $x)) (i32.const 3)))))
        (local.set $y (i32.add (local.get $y) (i32.const 1)))
        (br $rows)))
    (memory.copy (i32.add (local.get $dst) (i32.mul (i32.sub (local.get $height) (i32.const 1)) (local.get $row))) (local.get $last) (local.get $row))))
