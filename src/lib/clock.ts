import { v7 as uuidv7 } from 'uuid';
import type { Clock, IdGenerator } from '../commands/handler.js';

export const systemClock: Clock = { now: () => new Date() };
export const uuidV7Ids: IdGenerator = { newId: () => uuidv7() };
