import { describe, expect, it } from "vitest";
import { ApiError, describeError, errorFromResponse, fieldName, isUnauthenticated } from "./errors";

describe("errorFromResponse", () => {
  it("reads the panel's error body, naming the field without its location", () => {
    const error = errorFromResponse(422, {
      error: {
        code: "validation_error",
        message: "value is not a valid email address",
        field: "body.email",
        fields: [{ field: "body.email", message: "value is not a valid email address" }],
      },
    });
    expect(error).toBeInstanceOf(ApiError);
    expect(error.status).toBe(422);
    expect(error.code).toBe("validation_error");
    expect(error.field).toBe("email");
    expect(error.fields).toEqual([
      { field: "email", message: "value is not a valid email address" },
    ]);
    expect(describeError(error)).toBe("email: value is not a valid email address");
  });

  it.each([
    ["body.email: value is not a valid email address", "body.email"],
    ["backup_limit reached", "backup_limit"],
  ])("does not repeat a field the message already names (%s)", (message, field) => {
    const error = errorFromResponse(409, { error: { code: "x", message, field, fields: [] } });
    expect(describeError(error)).toBe(message);
  });

  it.each([null, "<html>Bad gateway</html>", { detail: "x" }, { error: { code: 3 } }])(
    "explains an answer without the panel's body (%s)",
    (body) => {
      const error = errorFromResponse(502, body);
      expect(error.code).toBe("http_error");
      expect(error.message).toContain("HTTP 502");
    },
  );
});

describe("describeError", () => {
  it("says when the panel could not be reached", () => {
    expect(describeError(new TypeError("Failed to fetch"))).toBe(
      "The panel could not be reached (Failed to fetch).",
    );
    expect(describeError("??")).toBe("Something went wrong.");
  });
});

describe("fieldName", () => {
  it.each([
    ["body.resources.memory", "resources.memory"],
    ["query.name", "name"],
    ["name", "name"],
  ])("%s -> %s", (location, expected) => {
    expect(fieldName(location)).toBe(expected);
  });
});

describe("isUnauthenticated", () => {
  it("is true for a 401 only", () => {
    const body = { code: "x", message: "y", fields: [] };
    expect(isUnauthenticated(new ApiError(401, body))).toBe(true);
    expect(isUnauthenticated(new ApiError(403, body))).toBe(false);
    expect(isUnauthenticated(new Error("x"))).toBe(false);
  });
});
