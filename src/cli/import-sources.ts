import { createReadStream } from 'node:fs';
import { open, opendir, stat } from 'node:fs/promises';
import { join, sep } from 'node:path';
import { parseLegacyDatasetName } from '../domain/names.js';
import { tarEntries } from '../formats/tar.reader.js';

/**
 * Which folder names a file's category when folders nest: `leaf`, the folder the file is in (the
 * deepest); `top`, the first folder under the import's root, whatever lies below it.
 */
export type CategoryRule = 'leaf' | 'top';
export const CATEGORY_RULES: readonly CategoryRule[] = ['leaf', 'top'];

/** One file of an import: where it is (for messages), its category, and its bytes or their path. */
export interface ImportEntry {
  readonly path: string;
  /** undefined: the file has no folder to name its category (it lies at the root). */
  readonly category: string | undefined;
  /** Why it cannot be sent at all (a link, a device), when it cannot. */
  readonly refused?: string;
  /** A file to read, or the bytes read from an archive. */
  readonly source: string | Buffer;
}

/** What an import reads: walked as often as needed, each walk in the same order. */
export interface ImportSource {
  readonly description: string;
  /**
   * The entries in order, with bytes (for an archive) only for those `want` keeps: the others
   * are skipped unread. Without `want`, every entry.
   */
  entries(want?: (path: string, category: string | undefined) => boolean): AsyncGenerator<ImportEntry>;
}

/** The category of a file whose folders (below the root) are `folders`. */
export function categoryOf(folders: readonly string[], rule: CategoryRule): string | undefined {
  if (folders.length === 0) return undefined;
  return rule === 'top' ? folders[0] : folders[folders.length - 1];
}

const hidden = (name: string) => name.startsWith('.');

/** A folder tree; hidden files and folders (.DS_Store, .git) are skipped. Walked lazily, one directory at a time. */
export function treeSource(root: string, rule: CategoryRule): ImportSource {
  async function* walk(dir: string, folders: string[], want?: (path: string, category: string | undefined) => boolean): AsyncGenerator<ImportEntry> {
    const names: { name: string; directory: boolean }[] = [];
    for await (const entry of await opendir(dir)) {
      if (hidden(entry.name)) continue;
      if (entry.isDirectory()) names.push({ name: entry.name, directory: true });
      else if (entry.isFile()) names.push({ name: entry.name, directory: false });
    }
    // Sorted, so that two runs over the same tree send the same files in the same order.
    names.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const { name, directory } of names) {
      const path = join(dir, name);
      if (directory) {
        yield* walk(path, [...folders, name], want);
      } else {
        const category = categoryOf(folders, rule);
        if (!want || want(path, category)) yield { path, category, source: path };
      }
    }
  }
  return { description: root, entries: (want) => walk(root, [], want) };
}

/** The first bytes of a file: a gzip stream starts with 1f 8b. */
async function isGzip(file: string): Promise<boolean> {
  const handle = await open(file, 'r');
  try {
    const { buffer, bytesRead } = await handle.read(Buffer.alloc(2), 0, 2, 0);
    return bytesRead === 2 && buffer[0] === 0x1f && buffer[1] === 0x8b;
  } finally {
    await handle.close();
  }
}

/**
 * A tar (or gzipped tar) file laid out like a folder tree. Folders are structure; links and
 * other non-file members are refused; hidden members (._AppleDouble, .DS_Store) are skipped.
 */
export function tarSource(file: string, rule: CategoryRule): ImportSource {
  async function* read(want?: (path: string, category: string | undefined) => boolean): AsyncGenerator<ImportEntry> {
    const gzipped = await isGzip(file);
    try {
      for await (const member of tarEntries(createReadStream(file), gzipped)) {
        const parts = member.path.split('/').filter((part) => part !== '' && part !== '.');
        if (member.type === 'directory' || parts.length === 0 || parts.some(hidden)) {
          member.skip();
          continue;
        }
        const category = categoryOf(parts.slice(0, -1), rule);
        const path = parts.join('/');
        if (want && !want(path, category)) {
          member.skip();
        } else if (!member.isFile) {
          member.skip();
          yield { path, category, refused: `a ${member.type} member, not a file`, source: Buffer.alloc(0) };
        } else {
          yield { path, category, source: await member.readAll() };
        }
      }
    } catch (error) {
      throw new Error(`${file} is not a readable tar archive: ${(error as Error).message}`);
    }
  }
  return { description: file, entries: read };
}

/** A file is read as a tar archive, a folder as a tree. */
export async function sourceAt(path: string, rule: CategoryRule): Promise<ImportSource> {
  const info = await stat(path).catch(() => undefined);
  if (!info) throw new Error(`${path} does not exist`);
  return info.isDirectory() ? treeSource(path.endsWith(sep) && path.length > 1 ? path.slice(0, -1) : path, rule) : tarSource(path, rule);
}

export interface DiceboxDataset {
  readonly dataset: string;
  readonly width: number;
  readonly height: number;
  /** The `<category>/<file>` tree of that dataset. */
  readonly dir: string;
}

/**
 * The datasets of an original dicebox data dir, `<base>/<name>_<W>x<H>/data/<category>/*.png`:
 * each folder becomes the dataset of the same name, at its width and height.
 */
export async function findDiceboxDatasets(base: string): Promise<DiceboxDataset[]> {
  const found: DiceboxDataset[] = [];
  for await (const entry of await opendir(base)) {
    const shape = entry.isDirectory() ? parseLegacyDatasetName(entry.name) : undefined;
    if (!shape) continue;
    const dir = join(base, entry.name, 'data');
    const data = await stat(dir).catch(() => undefined);
    if (data?.isDirectory()) found.push({ dataset: entry.name, width: shape.width, height: shape.height, dir });
  }
  return found.sort((a, b) => (a.dataset < b.dataset ? -1 : 1));
}
