// What the panel says when a request fails. Every error body of the API has one shape
// (`ErrorResponse`); anything else (a proxy's HTML page, a dropped connection) still becomes a
// message a person can act on.
import type { components } from "./schema";

type ErrorBody = components["schemas"]["ErrorBody"];

export interface FieldProblem {
  field: string;
  message: string;
}

export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  /** The request field the panel names, without its location prefix (`email`, not `body.email`). */
  readonly field: string | null;
  /** Where the panel says the field is (`body.email`), as its messages spell it. */
  readonly location: string | null;
  readonly fields: FieldProblem[];

  constructor(status: number, body: ErrorBody) {
    super(body.message);
    this.name = "ApiError";
    this.status = status;
    this.code = body.code;
    this.field = body.field ? fieldName(body.field) : null;
    this.location = body.field ?? null;
    this.fields = body.fields.map((problem) => ({
      field: fieldName(problem.field),
      message: problem.message,
    }));
  }
}

/** `body.resources.memory` -> `resources.memory`; `query.name` -> `name`. */
export function fieldName(location: string): string {
  return location.replace(/^(body|query|path|header)\./, "");
}

function isErrorBody(value: unknown): value is ErrorBody {
  if (typeof value !== "object" || value === null) return false;
  const candidate = value as Record<string, unknown>;
  return typeof candidate.code === "string" && typeof candidate.message === "string";
}

/** The error for a failed answer: the panel's own error body when there is one. */
export function errorFromResponse(status: number, body: unknown): ApiError {
  const error =
    typeof body === "object" && body !== null ? (body as Record<string, unknown>).error : undefined;
  if (isErrorBody(error)) return new ApiError(status, error);
  return new ApiError(status, {
    code: "http_error",
    message: `The panel answered HTTP ${status} without an explanation.`,
    fields: [],
  });
}

/** Whether the panel's message already says which field it is about ("body.email: ..."). */
function namesItsField(error: ApiError): boolean {
  if (error.location === null || error.field === null) return false;
  return error.message.includes(error.location) || error.message.startsWith(error.field);
}

/** A sentence for any thrown value: API errors name their field, network errors say so. */
export function describeError(error: unknown): string {
  if (error instanceof ApiError) {
    return error.field !== null && !namesItsField(error)
      ? `${error.field}: ${error.message}`
      : error.message;
  }
  if (error instanceof TypeError) return `The panel could not be reached (${error.message}).`;
  if (error instanceof Error) return error.message;
  return "Something went wrong.";
}

export function isUnauthenticated(error: unknown): boolean {
  return error instanceof ApiError && error.status === 401;
}
