"""EME wide-block encryption over AES-256 (the EME-32 variant gocryptfs uses for names, spec §6.3)."""

from __future__ import annotations

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

BLOCK = 16
MAX_BLOCKS = 128
_MASK128 = (1 << 128) - 1


def _dbl(x: int) -> int:  # inlined in _transform_many's loop
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
        return self._transform_many(tweak, [data], encrypt=True)[0]

    def decrypt(self, tweak: bytes, data: bytes) -> bytes:
        return self._transform_many(tweak, [data], encrypt=False)[0]

    def decrypt_many(self, tweak: bytes, items: list[bytes]) -> list[bytes]:
        """Decrypt many names of one directory with three AES calls in total.

        A listing is dominated by per-call overhead, not by AES: batching every name's blocks
        into one ECB call per EME pass makes a directory of 100,000 entries cheap.
        """
        return self._transform_many(tweak, items, encrypt=False)

    def encrypt_many(self, tweak: bytes, items: list[bytes]) -> list[bytes]:
        return self._transform_many(tweak, items, encrypt=True)

    def _transform_many(self, tweak: bytes, items: list[bytes], *, encrypt: bool) -> list[bytes]:
        if len(tweak) != BLOCK:
            raise ValueError("EME tweak must be 16 bytes")
        if not items:
            return []
        masks = self._masks
        for d in items:
            if len(d) % BLOCK or not 1 <= len(d) // BLOCK <= MAX_BLOCKS:
                raise ValueError("EME data must be 1..128 whole 16-byte blocks")
        update = self._enc.update if encrypt else self._dec.update
        frm = int.from_bytes
        t = frm(tweak, "little")
        # Pass 1 (step 2) for all names at once.
        ppp_all = update(
            b"".join((frm(d, "little") ^ masks[len(d) >> 4]).to_bytes(len(d), "little") for d in items)
        )
        ppps: list[int] = []
        mps: list[int] = []
        off = 0
        for d in items:
            size = len(d)
            ppp = frm(ppp_all[off : off + size], "little")
            off += size
            mp = t
            rest = ppp
            while rest:
                mp ^= rest & _MASK128
                rest >>= 128
            ppps.append(ppp)
            mps.append(mp)
        # Pass 2 (step 4) for all names at once.
        mc_all = update(b"".join(mp.to_bytes(BLOCK, "little") for mp in mps))
        cccs: list[bytes] = []
        for i, d in enumerate(items):
            m = len(d) >> 4
            mp = mps[i]
            mc = frm(mc_all[i * BLOCK : (i + 1) * BLOCK], "little")
            # Step 6: CCC_j = PPP_j xor 2^j*M for j >= 1 (block j sits at bits 128*j of a
            # little-endian integer); mx collects the xor of those masks.
            mval = mp ^ mc
            mcat = mx = 0
            for j in range(1, m):
                mval = ((mval << 1) & _MASK128) ^ (0x87 if mval >> 127 else 0)
                mcat |= mval << (128 * j)
                mx ^= mval
            # Step 7: CCC_0 = MC xor T xor CCC_1..CCC_{m-1} = PPP_0 xor (MC xor MP xor mx),
            # since the xor of PPP_1..PPP_{m-1} is MP xor T xor PPP_0.
            cccs.append((ppps[i] ^ mcat ^ (mc ^ mp ^ mx)).to_bytes(len(d), "little"))
        # Pass 3 (step 8) for all names at once.
        out_all = update(b"".join(cccs))
        out: list[bytes] = []
        off = 0
        for d in items:
            size = len(d)
            out.append((frm(out_all[off : off + size], "little") ^ masks[size >> 4]).to_bytes(size, "little"))
            off += size
        return out
