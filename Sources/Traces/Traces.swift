public enum Traces {}
