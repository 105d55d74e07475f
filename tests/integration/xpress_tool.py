#!/usr/bin/env python3
"""xpress (MS-WUSP 2.1.1) with an implementation independent of ferry's: PyPI dissect.util's
MS-XCA Plain LZ77 decoder (dissect.util.compression.lzxpress), for the integration tests.

  xpress_tool.py decode FILE...          writes each stream's decoded bytes to FILE.plain
  xpress_tool.py replay TOOL ARG...      runs the Python tool TOOL with ARGs, its HTTP answers
                                         that say Content-Encoding: xpress decoded first; prints
                                         "xpress: decoded N answers" last, on stderr
"""
import io
import runpy
import struct
import sys
import urllib.request
import urllib.response

from dissect.util.compression import lzxpress

MAX_BLOCK = 65535


def unframe(data):
    """Blocks of u32le original size, u32le compressed size, then the block (raw when equal)."""
    out = bytearray()
    at = 0
    while at < len(data):
        if len(data) - at < 8:
            raise ValueError('block header cut short at %d' % at)
        original, compressed = struct.unpack_from('<II', data, at)
        at += 8
        if not (0 < original <= MAX_BLOCK and 0 < compressed <= MAX_BLOCK):
            raise ValueError('block sizes %d, %d' % (original, compressed))
        payload = data[at:at + compressed]
        if len(payload) != compressed:
            raise ValueError('block cut short at %d' % at)
        at += compressed
        block = payload if compressed == original else lzxpress.decompress(payload)
        if len(block) != original:
            raise ValueError('block decodes to %d bytes, not %d' % (len(block), original))
        out += block
    return bytes(out)


decoded = 0


class XpressDecoder(urllib.request.BaseHandler):
    handler_order = 100  # before the error processor, so faults are decoded too

    def http_response(self, request, response):
        global decoded
        if (response.headers.get('Content-Encoding') or '').strip().lower() != 'xpress':
            return response
        body = unframe(response.read())
        decoded += 1
        headers = response.headers
        del headers['Content-Encoding']
        del headers['Content-Length']
        headers['Content-Length'] = str(len(body))
        plain = urllib.response.addinfourl(io.BytesIO(body), headers, response.url, response.code)
        plain.msg = response.msg
        return plain

    https_response = http_response


def main():
    if len(sys.argv) >= 3 and sys.argv[1] == 'decode':
        for name in sys.argv[2:]:
            with open(name, 'rb') as f:
                plain = unframe(f.read())
            with open(name + '.plain', 'wb') as f:
                f.write(plain)
        return 0
    if len(sys.argv) >= 3 and sys.argv[1] == 'replay':
        urllib.request.install_opener(urllib.request.build_opener(XpressDecoder()))
        tool = sys.argv[2]
        sys.argv = [tool] + sys.argv[3:]
        code = 0
        try:
            runpy.run_path(tool, run_name='__main__')
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else 1
        print('xpress: decoded %d answers' % decoded, file=sys.stderr)
        return code
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == '__main__':
    sys.exit(main())
