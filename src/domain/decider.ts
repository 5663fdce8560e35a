/**
 * A decider per aggregate (the shape of Emmett's): pure functions, events as the only output.
 * `decide` may throw a DomainError; it never reads a clock or a random source, it is given them.
 */
export interface DomainEvent<Type extends string = string, Data = unknown> {
  type: Type;
  data: Data;
}

export interface DecideContext {
  now: Date;
  newId(): string;
}

export interface Decider<Command, Event extends DomainEvent, State> {
  initialState(): State;
  evolve(state: State, event: Event): State;
  decide(command: Command, state: State, context: DecideContext): Event[];
}
