export declare const STREAMING_FLAGS: Readonly<Record<'audit' | 'projections', readonly string[]>>;
