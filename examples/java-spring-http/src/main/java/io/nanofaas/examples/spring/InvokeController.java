package io.nanofaas.examples.spring;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.cfg.JsonNodeFeature;
import com.fasterxml.jackson.databind.json.JsonMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import jakarta.servlet.http.HttpServletRequest;
import java.io.IOException;
import org.springframework.http.MediaType;
import org.springframework.http.ResponseEntity;
import org.springframework.web.bind.annotation.GetMapping;
import org.springframework.web.bind.annotation.PostMapping;
import org.springframework.web.bind.annotation.RestController;

@RestController
public class InvokeController {

    /**
     * Own mapper, so numbers are echoed as sent: decimals stay BigDecimal (no rounding through
     * double, "1.50" stays "1.50"), big integers stay BigInteger, and a body holding more than one
     * JSON document is rejected instead of silently truncated.
     */
    private static final ObjectMapper MAPPER = JsonMapper.builder()
            .enable(DeserializationFeature.USE_BIG_DECIMAL_FOR_FLOATS)
            .enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS)
            .disable(JsonNodeFeature.STRIP_TRAILING_BIGDECIMAL_ZEROES)
            .build();

    @GetMapping(path = "/health", produces = MediaType.APPLICATION_JSON_VALUE)
    public String health() {
        return "{\"status\":\"ok\"}";
    }

    /**
     * The body is read as raw bytes and parsed as JSON whatever the Content-Type says: no
     * charset guessing from the header (Jackson detects UTF-8/16/32), and no form decoding when a
     * client sends application/x-www-form-urlencoded (as `curl -d` does).
     */
    @PostMapping(path = "/invoke")
    public ResponseEntity<byte[]> invoke(HttpServletRequest request) throws IOException {
        byte[] body = request.getInputStream().readAllBytes();
        if (isBlank(body)) {
            return error("payload must be a JSON object, got an empty body");
        }
        JsonNode payload;
        try {
            payload = MAPPER.readTree(body);
        } catch (JsonProcessingException e) {
            return error("body is not valid JSON: " + e.getOriginalMessage());
        }
        try {
            JsonNode result = UppercaseFunction.apply(payload);
            return ResponseEntity.ok()
                    .contentType(MediaType.APPLICATION_JSON)
                    .body(MAPPER.writeValueAsBytes(result));
        } catch (UppercaseFunction.InvalidPayloadException e) {
            return error(e.getMessage());
        }
    }

    private static boolean isBlank(byte[] body) {
        for (byte b : body) {
            if (b != ' ' && b != '\t' && b != '\n' && b != '\r') {
                return false;
            }
        }
        return true;
    }

    private static ResponseEntity<byte[]> error(String message) throws JsonProcessingException {
        ObjectNode body = MAPPER.createObjectNode();
        ObjectNode error = body.putObject("error");
        error.put("code", "INVALID_PAYLOAD");
        error.put("message", message);
        return ResponseEntity.badRequest()
                .contentType(MediaType.APPLICATION_JSON)
                .body(MAPPER.writeValueAsBytes(body));
    }
}
