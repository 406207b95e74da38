// The one place the pages touch msgpack: @msgpack/msgpack from npm (see package.json),
// resolved through the import map in each page.
import { decode, encode } from "@msgpack/msgpack";

/** One frame's bytes for a message map; `undefined` fields are left out, not sent as nil. */
export function pack(message) {
  return encode(message, { ignoreUndefined: true });
}

/** The message map in a binary frame (an ArrayBuffer from a websocket). */
export function unpack(data) {
  return decode(new Uint8Array(data));
}
