// cluster-key-slot (ioredis' own slot function, CRC16 mod 16384 honouring hash tags) ships no types.
declare module 'cluster-key-slot' {
  export default function calculateSlot(key: string | Buffer): number;
}
