# Writes Igor binary waves (v2, v5) from the layout of Igor Technical Note
# TN003; used to make vegard's test files, which igor2's reader then checks.
import struct, sys, numpy as np

def checksum(buf, endian):
    n = len(buf)//2
    s = sum(struct.unpack(endian + '%dh' % n, buf[:2*n])) & 0xffff
    return s

def v2(path, data, dx, x0, dunits=b'V', xunits=b's', note=b'', endian='<', name=b'wave2'):
    data = np.asarray(data, dtype=np.float32)
    tcode = 2
    wh = bytearray(110)
    struct.pack_into(endian+'h', wh, 0, tcode)
    wh[6:6+len(name)] = name
    struct.pack_into(endian+'h', wh, 26, 0)       # whVersion
    wh[34:34+len(dunits)] = dunits
    wh[38:38+len(xunits)] = xunits
    struct.pack_into(endian+'i', wh, 42, len(data))
    struct.pack_into(endian+'dd', wh, 48, dx, x0)
    wfm_size = 126 + data.nbytes - 16 + 16   # header incl. wData[4] + data beyond it + 16 pad
    wfm_size = 126 + data.nbytes             # wave header (110) + wData... see TN003
    bh = bytearray(16)
    struct.pack_into(endian+'hiii', bh, 0, 2, wfm_size, len(note), 0)
    c = checksum(bytes(bh) + bytes(wh), endian)
    struct.pack_into(endian+'h', bh, 14, (-c) & 0xffff if False else struct.unpack('h', struct.pack('H', (-c) & 0xffff))[0])
    body = bytes(bh) + bytes(wh) + data.astype(endian+'f4').tobytes() + b'\0'*16 + note
    open(path, 'wb').write(body)

def v5(path, data, dx, x0, dunits=b'nm', xunits=b's', note=b'', endian='>', labels=None, name=b'wave5', dtype='f4'):
    data = np.asarray(data, dtype=dtype)
    tcode = {'f4': 2, 'f8': 4, 'i2': 0x10, 'i4': 0x20}[dtype]
    shape = data.shape
    ndim = [0,0,0,0]
    for i, s in enumerate(shape): ndim[i] = s
    npnts = int(np.prod(shape))
    label_bytes = b''
    dim_labels = [0,0,0,0]
    if labels is not None:
        # labels for dimension 1 (columns): entry 0 = dimension label, then one per column
        lab = [b''] + labels
        label_bytes = b''.join(l.ljust(32, b'\0') for l in lab)
        dim_labels[1] = len(label_bytes)
    wh = bytearray(320)
    struct.pack_into(endian+'i', wh, 12, npnts)
    struct.pack_into(endian+'h', wh, 16, tcode)
    struct.pack_into(endian+'h', wh, 26, 1)
    wh[28:28+len(name)] = name
    struct.pack_into(endian+'4i', wh, 68, *ndim)
    struct.pack_into(endian+'4d', wh, 84, dx, 1, 1, 1)
    struct.pack_into(endian+'4d', wh, 116, x0, 0, 0, 0)
    wh[148:148+len(dunits)] = dunits[:3]
    wh[152:152+len(xunits)] = xunits[:3]
    bh = bytearray(64)
    # column-major (Igor stores the first dimension fastest)
    raw = np.asfortranarray(data).astype(endian + dtype).tobytes(order='F')
    wfm_size = 320 + len(raw)
    struct.pack_into(endian+'hhiii', bh, 0, 5, 0, wfm_size, 0, len(note))
    struct.pack_into(endian+'4i', bh, 36, *dim_labels)
    c = checksum(bytes(bh) + bytes(wh), endian)
    struct.pack_into(endian+'H', bh, 2, (-c) & 0xffff)
    body = bytes(bh) + bytes(wh) + raw + note + label_bytes
    open(path, 'wb').write(body)

if __name__ == '__main__':
    out = sys.argv[1]
    t = np.arange(100)
    v2(out + '/trace_v2_le.ibw', np.sin(t/10.0).astype(np.float32), 1e-3, 0.5, note=b'written for vegard tests')
    note = b'InvOLS: 5.2e-08\rSpringConstant: 0.12\rScanRate: 1.0\rDate: 2024-05-01\rTime: 10:11:12 AM'
    v5(out + '/force_v5_be.ibw', np.cos(t/7.0) * 1e-9, 2e-5, 0.0, dunits=b'm', note=note)
    col = np.stack([np.arange(50)*0.1, np.arange(50)*-1e-9, np.arange(50)*1e-6], axis=1)
    v5(out + '/multi_v5_le.ibw', col, 1e-4, 0.0, dunits=b'm', endian='<', labels=[b'Raw', b'Defl', b'ZSnsr'], note=b'InvOLS: 6e-08', dtype='f8')
    v5(out + '/int16_v5_le.ibw', (t*3 - 150).astype(np.int16), 1e-3, 0.0, dunits=b'V', endian='<', dtype='i2')
