// Goal: a bus-disconnect in staging cuts exactly the connections of the process it names: the
// `CLIENT LIST` reply is read field by field and only clients with that exact name are picked (not
// a prefix of another process's name, not the publisher).
// Method: a CLIENT LIST reply as Redis 7 writes it, with look-alike names.
import { describe, expect, it } from 'vitest';
import { redisClientIds } from '../../../src/chaos/real-faults.ts';

const LIST = [
  'id=7 addr=127.0.0.1:50112 laddr=127.0.0.1:6379 fd=9 name=cloudbed-p1-mainloop-1-subscriber age=12 idle=0 flags=P db=0 sub=1 psub=0 cmd=subscribe',
  'id=8 addr=127.0.0.1:50114 laddr=127.0.0.1:6379 fd=10 name=cloudbed-p1-mainloop-1-publisher age=12 idle=3 flags=N db=0 sub=0 psub=0 cmd=publish',
  'id=9 addr=127.0.0.1:50116 laddr=127.0.0.1:6379 fd=11 name=cloudbed-p1-mainloop-10-subscriber age=2 idle=0 flags=P db=0 sub=1 psub=0 cmd=subscribe',
  'id=12 addr=127.0.0.1:50130 laddr=127.0.0.1:6379 fd=12 name= age=0 idle=0 flags=N db=0 sub=0 psub=0 cmd=client|list',
  'id=15 addr=127.0.0.1:50140 laddr=127.0.0.1:6379 fd=13 name=cloudbed-p1-mainloop-1-subscriber age=0 idle=0 flags=N db=0 sub=0 psub=0 cmd=client|setname',
  '',
].join('\n');

describe('redisClientIds', () => {
  it('picks every connection with exactly the name, and nothing else', () => {
    expect(redisClientIds(LIST, 'cloudbed-p1-mainloop-1-subscriber')).toEqual(['7', '15']);
    expect(redisClientIds(LIST, 'cloudbed-p1-mainloop-1-publisher')).toEqual(['8']);
    expect(redisClientIds(LIST, 'cloudbed-p1-mainloop')).toEqual([]);
    expect(redisClientIds('', 'x')).toEqual([]);
  });
});
