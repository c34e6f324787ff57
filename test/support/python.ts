import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** Runs a Python script with the system python3 (args after the script); returns its stdout parsed as JSON. */
export async function python<T>(script: string, ...args: string[]): Promise<T> {
  const { stdout } = await run('python3', ['-c', script, ...args], { maxBuffer: 256 * 1024 * 1024 });
  return JSON.parse(stdout) as T;
}

/**
 * Reads WebDataset shards with tarfile, by the WebDataset rules: a member's key is its path up to
 * the first dot of its base name, the rest its extension; a sample's members are adjacent. Prints
 * {key: {ext: text or sha256 of the bytes}} and fails on a key that comes back after another key.
 */
export const READ_WEBDATASET = `
import hashlib, json, sys, tarfile
out, seen, current = {}, set(), None
for path in sys.argv[1:]:
    with tarfile.open(path, mode='r|') as tar:
        for member in tar:
            assert member.isfile(), member.name
            base = member.name.rsplit('/', 1)[-1]
            key, ext = base.split('.', 1)
            if key != current:
                assert key not in seen, 'members of ' + key + ' are not adjacent'
                seen.add(key)
                current = key
            data = tar.extractfile(member).read()
            out.setdefault(key, {})[ext] = data.decode() if ext in ('cls', 'json') else hashlib.sha256(data).hexdigest()
print(json.dumps(out))
`;

/**
 * Reads safetensors shards with numpy alone (the format is a length, a JSON header and raw
 * arrays): prints [{ids, labels, pixelsSha256: [per sample], shape, metadata}] per shard.
 */
export const READ_SAFETENSORS = `
import hashlib, json, struct, sys
import numpy as np
shards = []
for path in sys.argv[1:]:
    with open(path, 'rb') as f:
        (n,) = struct.unpack('<Q', f.read(8))
        header = json.loads(f.read(n))
        body = f.read()
    def tensor(name, dtype):
        spec = header[name]
        start, end = spec['data_offsets']
        return np.frombuffer(body[start:end], dtype=dtype).reshape(spec['shape'])
    data = tensor('data', np.uint8)
    labels = tensor('labels', '<i8')
    ids = tensor('ids', '<i8')
    assert header['data']['dtype'] == 'U8' and header['labels']['dtype'] == 'I64'
    shards.append({'ids': ids.tolist(), 'labels': labels.tolist(), 'shape': list(data.shape),
                   'pixelsSha256': [hashlib.sha256(data[i].tobytes()).hexdigest() for i in range(data.shape[0])],
                   'metadata': header['__metadata__']})
print(json.dumps(shards))
`;

/** Lists a tar's members with tarfile: [{name, size, sha256}]. */
export const LIST_TAR = `
import hashlib, json, sys, tarfile
out = []
with tarfile.open(sys.argv[1]) as tar:
    for member in tar.getmembers():
        out.append({'name': member.name, 'size': member.size, 'sha256': hashlib.sha256(tar.extractfile(member).read()).hexdigest()})
print(json.dumps(out))
`;
