export declare const STREAMING_COMMANDS: readonly string[];
export declare const STREAMING_FLAGS: readonly string[];
