import { pack } from 'tar-stream';

export interface TarMember {
  readonly name: string;
  readonly data?: Buffer;
  readonly type?: 'file' | 'directory' | 'symlink' | 'link' | 'fifo';
  readonly linkname?: string;
  /** The size the header declares, when it must differ from the data's (a member over a limit). */
  readonly size?: number;
}

/** A tar archive of `members`, in order, built in memory. */
export async function tarOf(members: readonly TarMember[]): Promise<Buffer> {
  const archive = pack();
  for (const member of members) {
    if (member.type === 'directory') archive.entry({ name: member.name, type: 'directory', mode: 0o755 });
    else if (member.type === 'symlink' || member.type === 'link') archive.entry({ name: member.name, type: member.type, linkname: member.linkname ?? 'x' });
    else if (member.type === 'fifo') archive.entry({ name: member.name, type: 'fifo' });
    else archive.entry({ name: member.name, mode: 0o644 }, member.data ?? Buffer.alloc(0));
  }
  archive.finalize();
  const chunks: Buffer[] = [];
  for await (const chunk of archive) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}
