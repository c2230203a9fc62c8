package io.nanofaas.examples.spring;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.Locale;

/**
 * The demo function shared by every nanofaas example: the payload must be a JSON object whose
 * field "input" is a string; the result is the same object with "input" uppercased (ASCII letters
 * only, so every example runtime gives byte-for-byte the same answer) and every other field
 * unchanged.
 */
final class UppercaseFunction {

    private UppercaseFunction() {}

    /** Thrown when the payload does not fit the contract (answered with HTTP 400). */
    static final class InvalidPayloadException extends RuntimeException {
        InvalidPayloadException(String message) {
            super(message);
        }
    }

    static JsonNode apply(JsonNode payload) {
        if (payload == null || !payload.isObject()) {
            throw new InvalidPayloadException(
                    "payload must be a JSON object, got " + typeName(payload));
        }
        JsonNode input = payload.get("input");
        if (input == null || !input.isTextual()) {
            throw new InvalidPayloadException(
                    "field \"input\" must be a string, got " + typeName(input));
        }
        ObjectNode result = ((ObjectNode) payload).deepCopy();
        result.put("input", asciiUpper(input.textValue()));
        return result;
    }

    static String asciiUpper(String s) {
        char[] chars = s.toCharArray();
        for (int i = 0; i < chars.length; i++) {
            char c = chars[i];
            if (c >= 'a' && c <= 'z') {
                chars[i] = (char) (c - ('a' - 'A'));
            }
        }
        return new String(chars);
    }

    static String typeName(JsonNode node) {
        if (node == null || node.isMissingNode()) {
            return "nothing";
        }
        switch (node.getNodeType()) {
            case OBJECT: return "object";
            case ARRAY: return "array";
            case STRING: return "string";
            case NUMBER: return "number";
            case BOOLEAN: return "boolean";
            case NULL: return "null";
            default: return node.getNodeType().toString().toLowerCase(Locale.ROOT);
        }
    }
}
