;; The shrinking resample of src/domain/perceptual-hash.ts for 3-channel pixels: the sums of each
;; 32 × 32 cell's red, green and blue values, which the caller weighs into grey (19595 r + 38470 g
;; + 7471 b, the integer luma the JavaScript resample adds pixel by pixel: the same integers, so
;; the same hash). Source of src/domain/perceptual-hash.wasm.ts: regenerate that file with
;; `node scripts/build-wasm.mjs` after changing this one.
;;
;; A row's pixels are summed cell by cell in locals and added to the cell's three sums once per
;; row; the sums are 32-bit, which the caller keeps from overflowing (at most 8,000,000 pixels
;; in a cell: 255 × 8,000,000 < 2^31).
(module
  (memory (export "memory") 1)
  ;; box_rgb(pixels, width, height, starts, rowCells, sums):
  ;;   pixels:   width × height × 3 bytes, row after row;
  ;;   starts:   33 i32, the first column of each cell and then width;
  ;;   rowCells: height i32, the cell row of each pixel row;
  ;;   sums:     32 × 32 × 3 i32 (r, g, b per cell, row after row), zeroed by the caller.
  (func (export "box_rgb")
    (param $pixels i32) (param $width i32) (param $height i32) (param $starts i32) (param $rowCells i32) (param $sums i32)
    (local $y i32) (local $stride i32) (local $rowBase i32) (local $out i32) (local $o i32)
    (local $p i32) (local $end i32) (local $r i32) (local $g i32) (local $b i32)
    (local.set $stride (i32.mul (local.get $width) (i32.const 3)))
    (block $rows_done
      (loop $rows
        (br_if $rows_done (i32.ge_u (local.get $y) (local.get $height)))
        (local.set $rowBase (i32.add (local.get $pixels) (i32.mul (local.get $y) (local.get $stride))))
        ;; The first sum of this row's cell row: 32 cells × 3 sums × 4 bytes per cell row.
        (local.set $out
          (i32.add (local.get $sums)
            (i32.mul (i32.load (i32.add (local.get $rowCells) (i32.shl (local.get $y) (i32.const 2)))) (i32.const 384))))
        (local.set $o (i32.const 0))
        (local.set $end (i32.add (local.get $rowBase) (i32.mul (i32.load (local.get $starts)) (i32.const 3))))
        (loop $cells
          (local.set $p (local.get $end))
          (local.set $end
            (i32.add (local.get $rowBase)
              (i32.mul (i32.load (i32.add (local.get $starts) (i32.shl (i32.add (local.get $o) (i32.const 1)) (i32.const 2)))) (i32.const 3))))
          (local.set $r (i32.const 0))
          (local.set $g (i32.const 0))
          (local.set $b (i32.const 0))
          (block $pixels_done
            (loop $each
              (br_if $pixels_done (i32.ge_u (local.get $p) (local.get $end)))
              (local.set $r (i32.add (local.get $r) (i32.load8_u (local.get $p))))
              (local.set $g (i32.add (local.get $g) (i32.load8_u offset=1 (local.get $p))))
              (local.set $b (i32.add (local.get $b) (i32.load8_u offset=2 (local.get $p))))
              (local.set $p (i32.add (local.get $p) (i32.const 3)))
              (br $each)))
          (i32.store (local.get $out) (i32.add (i32.load (local.get $out)) (local.get $r)))
          (i32.store offset=4 (local.get $out) (i32.add (i32.load offset=4 (local.get $out)) (local.get $g)))
          (i32.store offset=8 (local.get $out) (i32.add (i32.load offset=8 (local.get $out)) (local.get $b)))
          (local.set $out (i32.add (local.get $out) (i32.const 12)))
          (local.set $o (i32.add (local.get $o) (i32.const 1)))
          (br_if $cells (i32.lt_u (local.get $o) (i32.const 32))))
        (local.set $y (i32.add (local.get $y) (i32.const 1)))
        (br $rows)))))
