"""EME wide-block encryption over AES-256 (the EME-32 variant gocryptfs uses for names, spec §6.3)."""

from __future__ import annotations

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

BLOCK = 16
MAX_BLOCKS = 128
_MASK128 = (1 << 128) - 1


def _dbl(x: int) -> int:
    """Multiply by 2 in GF(2^128) with EME-32's byte order: the block is a little-endian integer."""
    carry = x >> 127
    return ((x << 1) & _MASK128) ^ (0x87 if carry else 0)


class EME:
    """EME encrypt/decrypt with a fixed AES-256 key; tweak and data vary per call.

    The AES contexts are created once and reused: ECB keeps no state between calls, and
    building a context costs more than encrypting a name, which matters for big listings.
    """

    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise ValueError("EME key must be 32 bytes")
        cipher = Cipher(algorithms.AES(key), modes.ECB())
        self._enc = cipher.encryptor()
        self._dec = cipher.decryptor()
        # L = AES-encrypt(0^16), always encryption (§6.3 step 1); L_j = 2^(j+1) * L.
        lval = int.from_bytes(self._enc.update(bytes(BLOCK)), "little")
        lbytes = b""
        # _masks[m] XORs L_0..L_{m-1} onto m blocks at once (one big-integer operation).
        self._masks = [0]
        for _ in range(MAX_BLOCKS):
            lval = _dbl(lval)
            lbytes += lval.to_bytes(BLOCK, "little")
            self._masks.append(int.from_bytes(lbytes, "little"))

    def encrypt(self, tweak: bytes, data: bytes) -> bytes:
        return self._transform(tweak, data, encrypt=True)

    def decrypt(self, tweak: bytes, data: bytes) -> bytes:
        return self._transform(tweak, data, encrypt=False)

    def _transform(self, tweak: bytes, data: bytes, *, encrypt: bool) -> bytes:
        if len(tweak) != BLOCK:
            raise ValueError("EME tweak must be 16 bytes")
        size = len(data)
        m = size // BLOCK
        if size % BLOCK or not 1 <= m <= MAX_BLOCKS:
            raise ValueError("EME data must be 1..128 whole 16-byte blocks")
        ctx = self._enc if encrypt else self._dec
        lmask = self._masks[m]
        ppp_all = ctx.update((int.from_bytes(data, "little") ^ lmask).to_bytes(size, "little"))
        ppp = [int.from_bytes(ppp_all[i : i + BLOCK], "little") for i in range(0, size, BLOCK)]
        mp = int.from_bytes(tweak, "little")
        for v in ppp:
            mp ^= v
        mc = int.from_bytes(ctx.update(mp.to_bytes(BLOCK, "little")), "little")
        mval = mp ^ mc
        ccc = [0] * m
        acc = mc ^ int.from_bytes(tweak, "little")
        for j in range(1, m):
            mval = _dbl(mval)
            ccc[j] = ppp[j] ^ mval
            acc ^= ccc[j]
        ccc[0] = acc
        ccc_bytes = b"".join(v.to_bytes(BLOCK, "little") for v in ccc)
        out = ctx.update(ccc_bytes)
        return (int.from_bytes(out, "little") ^ lmask).to_bytes(size, "little")
